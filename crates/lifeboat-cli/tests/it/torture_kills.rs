//! Torture: `backup`, `copy`, `forget` and `prune` killed with SIGKILL at random moments, on a
//! local primary and its S3 copy (moto). After every kill the repository it worked on passes
//! Lifeboat's `verify --read-data` and restic's `check --read-data`, the same command then runs
//! to its end, and at the end every snapshot still listed restores byte for byte.

use std::{
    collections::BTreeMap,
    fs,
    process::Command,
    thread,
    time::{Duration, Instant},
};

use lifeboat_testing::{MotoServer, tree_digest, write_large_file};
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::util::{PASSWORD, PASSWORD_ENV, Run, Sandbox, toml_path, toml_str, under};

const BUCKET: &str = "lifeboat-kills";
/// Kills that must land while the process still runs.
const KILLS: usize = 50;

/// `main` (local, primary) and `offsite` (S3, filled by `copy`), a command asset `db` and a
/// files asset `site`, three snapshots of each kept.
fn plan(sb: &Sandbox, s3: &MotoServer) {
    sb.write_raw_plan(&format!(
        "version = 1\n[plan]\nname = \"it\"\n\n\
         [repositories.main]\nurl = {}\npassword-env = \"{PASSWORD_ENV}\"\n\n\
         [repositories.offsite]\nurl = {}\npassword-env = \"{PASSWORD_ENV}\"\n\n\
         [assets.db]\ntype = \"command\"\nbackup = {}\nretention = {{ last = 3 }}\n\n\
         [assets.site]\ntype = \"files\"\npaths = [{}]\nretention = {{ last = 3 }}\n",
        toml_path(&sb.repo()),
        toml_str(&offsite_url(s3)),
        toml_str(&format!("cat {}", sb.join("db.bin").display())),
        toml_path(&sb.join("site")),
    ));
}

fn offsite_url(s3: &MotoServer) -> String {
    format!(
        "s3://{BUCKET}/dr?endpoint={}&region=us-east-1&path-style=true",
        s3.endpoint()
    )
}

fn lifeboat(sb: &Sandbox, s3: &MotoServer, args: &[&str]) -> Command {
    let mut cmd = sb.std_cmd(args);
    cmd.envs(s3.aws_env());
    cmd
}

/// restic 0.14 on either repository: the local directory, or the bucket through moto.
fn restic(sb: &Sandbox, s3: &MotoServer, offsite: bool, args: &[&str]) -> Run {
    let repo = if offsite {
        format!("s3:{}/{BUCKET}/dr", s3.endpoint())
    } else {
        sb.repo().display().to_string()
    };
    let out = Command::new("restic")
        .args(["--no-cache", "-r", &repo])
        .args(args)
        .envs(s3.aws_env())
        .env("RESTIC_PASSWORD", PASSWORD)
        .output()
        .expect("run restic (Debian package restic)");
    Run::from(out)
}

/// The jobs killed in turn, and whether each works on the copy.
const JOBS: [(&[&str], bool); 6] = [
    (&["backup"], false),
    (&["copy", "--from", "main", "--to", "offsite"], true),
    (&["forget"], false),
    (&["prune"], false),
    (&["--repo", "offsite", "forget"], true),
    (&["--repo", "offsite", "prune"], true),
];

/// What the sources held when a backup ran: db.bin's seed and the site's digest.
#[derive(Clone)]
struct Content {
    db_seed: u64,
    site: BTreeMap<String, lifeboat_testing::EntryDigest>,
}

/// New content for the next backup: a new db.bin, and a few site files rewritten.
fn change(sb: &Sandbox, round: u64) -> Content {
    let db_seed = 1000 + round;
    write_large_file(&sb.join("db.bin"), 1_200_000, db_seed);
    for i in 0..6 {
        let n = (round * 6 + i) % 40;
        write_large_file(
            &sb.join(&format!("site/p{n:02}.bin")),
            20_000,
            round * 100 + i,
        );
    }
    Content {
        db_seed,
        site: tree_digest(&sb.join("site")),
    }
}

/// (id, asset, time) of every snapshot in `repo`. A copy has its own id but keeps the time.
fn snapshot_ids(sb: &Sandbox, s3: &MotoServer, repo: &str) -> Vec<(String, String, String)> {
    let run = Run::from(
        lifeboat(sb, s3, &["--repo", repo, "--json", "snapshots"])
            .output()
            .unwrap(),
    )
    .expect_code(0);
    run.json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == "lifeboat")
        })
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["asset"].as_str().unwrap().to_owned(),
                s["time"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn jobs_killed_at_random_moments_never_damage_a_repository() {
    let s3 = MotoServer::start().expect("start moto_server");
    s3.create_bucket(BUCKET).unwrap();
    let sb = Sandbox::new();
    fs::create_dir_all(sb.join("site")).unwrap();
    plan(&sb, &s3);
    let ok = |args: &[&str]| Run::from(lifeboat(&sb, &s3, args).output().unwrap()).expect_code(0);
    ok(&["init"]);

    // Each job's duration when left alone, to spread the kills over it.
    // Snapshot time → what the sources held when it was taken.
    let mut content: BTreeMap<String, Content> = BTreeMap::new();
    let mut current = change(&sb, 0);
    let mut took = Vec::new();
    for (args, _) in JOBS {
        let started = Instant::now();
        ok(args);
        took.push(started.elapsed());
    }
    for (_, _, time) in snapshot_ids(&sb, &s3, "main") {
        content.insert(time, current.clone());
    }

    let mut rng = StdRng::seed_from_u64(20_261_205);
    let (mut kills, mut round) = (0, 0u64);
    while kills < KILLS {
        round += 1;
        assert!(round < 200, "only {kills} kills landed in {round} rounds");
        let (args, offsite) = JOBS[(round as usize) % JOBS.len()];
        if args == ["backup"] {
            current = change(&sb, round);
        }
        let mut child = lifeboat(&sb, &s3, args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let window = took[(round as usize) % JOBS.len()].as_secs_f64();
        thread::sleep(Duration::from_secs_f64(rng.random_range(0.0..window)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        let name = if offsite { "offsite" } else { "main" };

        // Whatever the job left, the repository it worked on is whole...
        let verify = Run::from(
            lifeboat(&sb, &s3, &["--repo", name, "verify", "--read-data"])
                .output()
                .unwrap(),
        );
        assert_eq!(
            verify.code, 0,
            "round {round}: {args:?} killed, then {name} fails verify\n{}\n{}",
            verify.stdout, verify.stderr
        );
        // restic 0.14 waits for no lock, not even a stale one: a killed job's lock (its own
        // or Lifeboat's) is removed with `restic unlock`, which must judge ours stale.
        restic(&sb, &s3, offsite, &["unlock"]).expect_code(0);
        let check = restic(&sb, &s3, offsite, &["check", "--read-data"]);
        assert_eq!(
            check.code, 0,
            "round {round}: {args:?} killed, then restic check fails on {name}\n{}\n{}",
            check.stdout, check.stderr
        );
        // ...and the same job, run again, completes.
        ok(args);
        for (_, _, time) in snapshot_ids(&sb, &s3, "main") {
            content.entry(time).or_insert_with(|| current.clone());
        }
    }
    eprintln!("{kills} kills in {round} rounds");

    // Every snapshot left restores byte for byte, from both repositories.
    let expected_db = sb.join("expected.bin");
    for repo in ["main", "offsite"] {
        let snapshots = snapshot_ids(&sb, &s3, repo);
        assert!(snapshots.len() >= 2, "{repo}: {snapshots:?}");
        for (id, asset, time) in snapshots {
            let want = &content[&time];
            if asset == "db" {
                let dumped = Run::from(
                    lifeboat(&sb, &s3, &["--repo", repo, "dump", "db", "--snapshot", &id])
                        .output()
                        .unwrap(),
                )
                .expect_code(0);
                write_large_file(&expected_db, 1_200_000, want.db_seed);
                assert!(
                    dumped.stdout_bytes == fs::read(&expected_db).unwrap(),
                    "{repo}: snapshot {id} of db differs"
                );
            } else {
                let out = sb.join(&format!("restored-{repo}-{}", &id[..8]));
                ok(&[
                    "--repo",
                    repo,
                    "restore",
                    "site",
                    "--snapshot",
                    &id,
                    "--to",
                    out.to_str().unwrap(),
                ]);
                assert!(
                    tree_digest(&under(&out, &sb.join("site"))) == want.site,
                    "{repo}: snapshot {id} of site differs"
                );
            }
        }
    }
}
