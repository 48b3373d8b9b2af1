//! A flaky network between Lifeboat and its S3 store: the fault proxy resets connections, cuts
//! them mid-transfer, answers 500, goes silent and delays, in front of a real moto_server. Every backup
//! either completes with a clean check or fails with a clear error; the repository stays
//! consistent throughout.

use std::{collections::BTreeMap, fs, net::SocketAddr, time::Duration};

use lifeboat_testing::{FaultProxy, Faults, MotoServer, write_large_file};
use serde_json::Value;

use crate::util::{Run, Sandbox, toml_path, toml_str};

const BUCKET: &str = "lifeboat-faults";

fn plan(sb: &Sandbox, endpoint: &str) {
    // A short time-out, so that stalled requests are given up and retried quickly.
    let url = format!("s3://{BUCKET}/dr?endpoint={endpoint}&region=us-east-1&timeout=4s");
    sb.write_plan_with_url(
        &toml_str(&url),
        &format!(
            "[assets.web]\ntype = \"files\"\npaths = [{}]\n\n[assets.vault]\ntype = \"command\"\nbackup = {}\nfilename = \"vault.snap\"\n",
            toml_path(&sb.join("src")),
            toml_str(&format!("cat {}", sb.join("vault.snap").display())),
        ),
    );
}

fn run_s3(sb: &Sandbox, s3: &MotoServer, args: &[&str]) -> Run {
    let mut cmd = sb.cmd(args);
    for (k, v) in s3.aws_env() {
        cmd.env(k, v);
    }
    Run::from(cmd.output().unwrap())
}

fn upstream(s3: &MotoServer) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], s3.port()))
}

#[test]
fn backups_through_a_flaky_network_complete_or_fail_cleanly() {
    let s3 = MotoServer::start().expect("start moto_server");
    s3.create_bucket(BUCKET).unwrap();
    let sb = Sandbox::new();
    fs::create_dir_all(sb.join("src")).unwrap();
    plan(&sb, &s3.endpoint());
    run_s3(&sb, &s3, &["init"]).expect_code(0);

    let proxy = FaultProxy::start(
        upstream(&s3),
        Faults {
            reset: 0.05,
            cut: 0.04,
            error_500: 0.06,
            stall: 0.03,
            delay: 0.10,
            max_delay: Duration::from_millis(300),
            seed: 20_261_122,
        },
    )
    .unwrap();
    // What each successful backup of vault stored, by snapshot id.
    let mut stored: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut ok_runs = 0;
    for round in 0..8u64 {
        write_large_file(&sb.join(&format!("src/part-{round}.bin")), 700_000, round);
        write_large_file(&sb.join("vault.snap"), 900_000, 100 + round);
        plan(&sb, &proxy.endpoint());
        let run = run_s3(&sb, &s3, &["--json", "backup"]);
        assert!(
            matches!(run.code, 0 | 1 | 3),
            "round {round}: exit {} (a crash?)\n{}\n{}",
            run.code,
            run.stdout,
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        let report = run.json();
        if run.code == 0 {
            ok_runs += 1;
        }
        for asset in report["assets"].as_array().into_iter().flatten() {
            if asset["ok"] == true {
                if asset["asset"] == "vault" {
                    stored.insert(
                        asset["snapshot"].as_str().unwrap().to_owned(),
                        fs::read(sb.join("vault.snap")).unwrap(),
                    );
                }
            } else {
                // Each failure names where it happened: the repository, or the asset itself.
                let error = asset["error"].as_str().unwrap_or_default();
                let name = asset["asset"].as_str().unwrap();
                assert!(
                    error.contains("repository main") || error.contains(&format!("asset {name}")),
                    "round {round}: unclear error: {error}"
                );
            }
        }
        // Checked without faults: whatever happened, the repository is consistent.
        plan(&sb, &s3.endpoint());
        let verify = run_s3(&sb, &s3, &["--json", "verify", "--read-data"]);
        assert_eq!(
            verify.code, 0,
            "round {round}: repository damaged after a faulty backup\n{}\n{}",
            verify.stdout, verify.stderr
        );
    }
    let counts = proxy.counts();
    eprintln!("fault proxy: {}", counts.summary());
    assert!(
        counts.resets.load(std::sync::atomic::Ordering::Relaxed) > 0
            && counts.errors_500.load(std::sync::atomic::Ordering::Relaxed) > 0
            && counts.stalls.load(std::sync::atomic::Ordering::Relaxed) > 0
            && counts.cuts.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the proxy injected too little to prove anything: {}",
        counts.summary()
    );
    assert!(
        ok_runs >= 4,
        "retries should carry most backups: {ok_runs}/8"
    );

    // Every snapshot a backup reported as stored gives back exactly its bytes.
    plan(&sb, &s3.endpoint());
    for (id, want) in &stored {
        let got = run_s3(&sb, &s3, &["dump", "vault", "--snapshot", id]).expect_code(0);
        assert!(got.stdout_bytes == *want, "snapshot {id} gave other bytes");
    }
}

/// A store that resets every connection: the backup gives up after its retries with an error
/// naming the repository, writes nothing, and the repository is as it was.
#[test]
fn a_dead_network_fails_the_backup_with_a_clear_error() {
    let s3 = MotoServer::start().expect("start moto_server");
    s3.create_bucket(BUCKET).unwrap();
    let sb = Sandbox::new();
    fs::create_dir_all(sb.join("src")).unwrap();
    fs::write(sb.join("src/a.txt"), "a\n").unwrap();
    write_large_file(&sb.join("vault.snap"), 10_000, 1);
    plan(&sb, &s3.endpoint());
    run_s3(&sb, &s3, &["init"]).expect_code(0);
    run_s3(&sb, &s3, &["backup"]).expect_code(0);
    let before: Value = run_s3(&sb, &s3, &["--json", "snapshots"]).json();

    let proxy = FaultProxy::start(
        upstream(&s3),
        Faults {
            reset: 1.0,
            ..Faults::none()
        },
    )
    .unwrap();
    plan(&sb, &proxy.endpoint());
    let run = run_s3(&sb, &s3, &["backup"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("repository main"),
        "the error names the repository: {}",
        run.stderr
    );

    plan(&sb, &s3.endpoint());
    let after: Value = run_s3(&sb, &s3, &["--json", "snapshots"]).json();
    assert_eq!(before, after);
    run_s3(&sb, &s3, &["verify", "--read-data"]).expect_code(0);
}
