//! Redis assets: the RDB over the replication protocol, keys counted in a sandbox, restored by
//! replaying DUMP/RESTORE with TTLs.

use lifeboat_sources::resp::{Client, Reply};
use lifeboat_testing::sandbox::RedisSandbox;

use crate::util::Sandbox;

fn client(port: u16) -> Client {
    Client::connect("127.0.0.1", port, None, None).unwrap()
}

fn get(c: &mut Client, db: &str, key: &str) -> Option<String> {
    c.ok(&[b"SELECT", db.as_bytes()]).unwrap();
    c.ok(&[b"GET", key.as_bytes()]).unwrap().text()
}

#[test]
fn redis_backup_and_restore_with_ttls() {
    // The "live" server is a sandbox too: tests never touch the machine's Redis on 6379.
    let live = RedisSandbox::start(None).unwrap();
    let mut c = client(live.port());
    for i in 0..300 {
        c.ok(&[
            b"SET",
            format!("event:{i}").as_bytes(),
            format!("payload {i}").as_bytes(),
        ])
        .unwrap();
    }
    c.ok(&[b"SET", b"session", b"abc", b"EX", b"3600"]).unwrap();
    c.ok(&[b"SELECT", b"3"]).unwrap();
    c.ok(&[b"RPUSH", b"queue", b"a", b"b", b"c"]).unwrap();

    let sb = Sandbox::new();
    sb.write_plan(&format!(
        "[assets.events]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:{}\"\n",
        live.port()
    ));
    sb.run_ok(&["init"]);
    let backup = sb.run(&["--json", "backup"]).expect_code(0).json();
    assert_eq!(backup["assets"][0]["ok"], true, "{backup:#}");

    // Data loss, then a restore into the live server.
    c.ok(&[b"FLUSHALL"]).unwrap();
    let report = sb
        .run(&["--json", "restore", "events", "--yes"])
        .expect_code(0)
        .json();
    assert_eq!(report["keys"], 302, "{report:#}");
    assert!(report["safety_snapshot"].is_string(), "{report:#}");
    assert_eq!(
        get(&mut c, "0", "event:299").as_deref(),
        Some("payload 299")
    );
    c.ok(&[b"SELECT", b"0"]).unwrap();
    let Reply::Int(ttl) = c.ok(&[b"TTL", b"session"]).unwrap() else {
        panic!("TTL reply");
    };
    assert!(ttl > 3000 && ttl <= 3600, "TTL kept: {ttl}");
    c.ok(&[b"SELECT", b"3"]).unwrap();
    assert_eq!(c.ok(&[b"LLEN", b"queue"]).unwrap(), Reply::Int(3));

    // Into another server.
    let other = RedisSandbox::start(None).unwrap();
    sb.run_ok(&["restore", "events", "--to", &other.url()]);
    let mut o = client(other.port());
    assert_eq!(get(&mut o, "0", "event:7").as_deref(), Some("payload 7"));
}

/// An ACL user and a password from the environment: the backup authenticates over the socket,
/// and a wrong password is a clear error that never shows the password.
#[test]
fn redis_acl_user_and_password_env() {
    let live = RedisSandbox::start_with_user(None, "backup", "acl-s3cret-pw").unwrap();
    let mut c = Client::connect(
        "127.0.0.1",
        live.port(),
        Some("backup"),
        Some("acl-s3cret-pw"),
    )
    .unwrap();
    c.ok(&[b"SET", b"k", b"v"]).unwrap();
    let sb = Sandbox::new();
    sb.write_plan(&format!(
        "[assets.cache]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:{}\"\nusername = \"backup\"\npassword-env = \"LB_REDIS_PW\"\n",
        live.port()
    ));
    sb.run_ok(&["init"]);
    let ok = sb
        .cmd(&["--json", "backup"])
        .env("LB_REDIS_PW", "acl-s3cret-pw")
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");

    let wrong = sb
        .cmd(&["--json", "backup"])
        .env("LB_REDIS_PW", "not-the-acl-s3cret")
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(1));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&wrong.stdout),
        String::from_utf8_lossy(&wrong.stderr)
    );
    assert!(text.contains("AUTH refused"), "{text}");
    assert!(!text.contains("s3cret"), "password printed: {text}");
    assert_eq!(
        sb.snapshots_of("cache").len(),
        1,
        "a failed backup left a snapshot"
    );
}

/// A server that requires AUTH while the plan gives no password: a clear error naming the
/// asset and server, with what to add to the plan, and no snapshot.
#[test]
fn redis_requiring_auth_without_a_password() {
    let live = RedisSandbox::start_with_user(None, "backup", "acl-pw-xyz").unwrap();
    let sb = Sandbox::new();
    sb.write_plan(&format!(
        "[assets.cache]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:{}\"\n",
        live.port()
    ));
    sb.run_ok(&["init"]);
    let run = sb.run(&["backup"]).expect_code(1);
    let text = format!("{}{}", run.stdout, run.stderr);
    assert!(text.contains("asset cache"), "{text}");
    assert!(
        text.contains(&format!("127.0.0.1:{}", live.port())),
        "{text}"
    );
    assert!(text.contains("password-env"), "{text}");
    assert!(sb.snapshots().is_empty());
}

/// `data-dir` set and the server stopped: the RDB file is replaced (checked in a sandbox
/// first), the old one kept beside, and the server starts with the snapshot's keys.
#[test]
fn redis_data_dir_restore_with_the_server_stopped() {
    let mut live = RedisSandbox::start(None).unwrap();
    let mut c = client(live.port());
    for i in 0..50 {
        c.ok(&[b"SET", format!("k{i}").as_bytes(), b"v"]).unwrap();
    }
    let sb = Sandbox::new();
    sb.write_plan(&format!(
        "[assets.cache]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:{}\"\ndata-dir = \"{}\"\n",
        live.port(),
        live.dir().display()
    ));
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup"]);

    // Data loss, written to disk, then the server stops.
    c.ok(&[b"FLUSHALL"]).unwrap();
    // The backup's replication fork may still be finishing: SAVE once it is done.
    let mut saved = false;
    for _ in 0..100 {
        if c.ok(&[b"SAVE"]).is_ok() {
            saved = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(saved, "SAVE");
    drop(c);
    live.shutdown();
    let rdb = live.dir().join("dump.rdb");

    let dry = sb.run_ok(&["restore", "cache", "--yes", "--dry-run"]);
    assert!(
        dry.stdout
            .contains(&format!("would: replace {}", rdb.display())),
        "{}",
        dry.stdout
    );
    let report = sb
        .run(&["--json", "restore", "cache", "--yes"])
        .expect_code(0)
        .json();
    let kept = report["kept"].as_str().unwrap();
    assert!(kept.contains("dump.rdb.lifeboat-old-"), "{report:#}");
    assert!(std::path::Path::new(kept).exists());

    // A server started on the data directory's RDB has the keys back.
    let restarted = RedisSandbox::start(Some(&rdb)).unwrap();
    let mut r = client(restarted.port());
    assert_eq!(get(&mut r, "0", "k49").as_deref(), Some("v"));
    assert_eq!(r.keyspace().unwrap().get("db0"), Some(&50));
}

/// Every data type, several databases, absolute expiry times: all back after FLUSHALL and a
/// restore, each key's value and its expiry within a second of the original.
#[test]
fn redis_every_type_and_expiry_survive_flushall() {
    let live = RedisSandbox::start(None).unwrap();
    let mut c = client(live.port());
    let int = |r: Reply| match r {
        Reply::Int(n) => n,
        other => panic!("not an integer: {other:?}"),
    };
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let expire_at = (now_ms + 3_600_000).to_string();
    let script: &[&[&[u8]]] = &[
        &[b"SELECT", b"0"],
        &[b"SET", b"str", b"hello \x00 binary \xff"],
        &[b"HSET", b"hash", b"f1", b"v1", b"f2", b"v2"],
        &[b"RPUSH", b"list", b"a", b"b", b"c"],
        &[b"SADD", b"set", b"x", b"y", b"z"],
        &[b"ZADD", b"zset", b"1.5", b"one", b"2.5", b"two"],
        &[b"XADD", b"stream", b"1-1", b"field", b"value"],
        &[b"XADD", b"stream", b"2-1", b"field", b"value2"],
        &[b"PFADD", b"hll", b"a", b"b", b"c", b"d"],
        &[b"SET", b"expiring", b"soon"],
        &[b"PEXPIREAT", b"expiring", expire_at.as_bytes()],
        &[b"SELECT", b"5"],
        &[b"SET", b"other-db", b"5"],
        &[b"SELECT", b"15"],
        &[b"HSET", b"h15", b"k", b"v"],
    ];
    for cmd in script {
        c.ok(cmd).unwrap();
    }
    // A digest of every key's serialized value, per database.
    let digest = |c: &mut Client| -> Vec<String> {
        let mut out = Vec::new();
        for db in ["0", "5", "15"] {
            c.ok(&[b"SELECT", db.as_bytes()]).unwrap();
            let Reply::Array(Some(keys)) = c.ok(&[b"KEYS", b"*"]).unwrap() else {
                panic!("KEYS");
            };
            let mut keys: Vec<Vec<u8>> = keys
                .into_iter()
                .map(|k| match k {
                    Reply::Bulk(Some(b)) => b,
                    other => panic!("{other:?}"),
                })
                .collect();
            keys.sort();
            for k in keys {
                let t = c.ok(&[b"TYPE", &k]).unwrap().text().unwrap();
                let value = match t.as_str() {
                    // A HyperLogLog's bytes carry a cached count that PFCOUNT rewrites.
                    "string" if k == b"hll" => {
                        format!("{:?}", c.ok(&[b"PFCOUNT", &k]).unwrap())
                    }
                    "string" => format!("{:?}", c.ok(&[b"GET", &k]).unwrap()),
                    "hash" => format!("{:?}", c.ok(&[b"HGETALL", &k]).unwrap()),
                    "list" => format!("{:?}", c.ok(&[b"LRANGE", &k, b"0", b"-1"]).unwrap()),
                    "set" => format!("{:?}", c.ok(&[b"SCARD", &k]).unwrap()),
                    "zset" => format!(
                        "{:?}",
                        c.ok(&[b"ZRANGE", &k, b"0", b"-1", b"WITHSCORES"]).unwrap()
                    ),
                    "stream" => format!("{:?}", c.ok(&[b"XRANGE", &k, b"-", b"+"]).unwrap()),
                    other => other.to_owned(),
                };
                out.push(format!("{db}/{}:{t}:{value}", String::from_utf8_lossy(&k)));
            }
        }
        out
    };
    let before = digest(&mut c);
    c.ok(&[b"SELECT", b"0"]).unwrap();
    let hll_before = int(c.ok(&[b"PFCOUNT", b"hll"]).unwrap());

    let sb = Sandbox::new();
    sb.write_plan(&format!(
        "[assets.cache]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:{}\"\n",
        live.port()
    ));
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup"]);
    c.ok(&[b"FLUSHALL"]).unwrap();
    assert!(digest(&mut c).is_empty());
    sb.run_ok(&["restore", "cache", "--yes", "--skip-safety-snapshot"]);

    assert_eq!(digest(&mut c), before);
    c.ok(&[b"SELECT", b"0"]).unwrap();
    assert_eq!(int(c.ok(&[b"PFCOUNT", b"hll"]).unwrap()), hll_before);
    let at = int(c.ok(&[b"PEXPIRETIME", b"expiring"]).unwrap());
    let want: i64 = expire_at.parse().unwrap();
    assert!((at - want).abs() <= 1000, "expiry moved: {at} vs {want}");
    assert_eq!(int(c.ok(&[b"TTL", b"str"]).unwrap()), -1, "no TTL added");
}
