//! The e-mail notifier against a real SMTP server (Python's aiosmtpd, started here on a free
//! port with a certificate made by openssl): STARTTLS before anything else, the login from a
//! secret source, the event in the message, and nothing at all to a server without TLS.

use std::{
    fs,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use lifeboat_testing::free_port;
use serde_json::Value;

use crate::util::{Run, Sandbox, toml_path};

const SMTP_PASSWORD: &str = "smtp-Pa55-for-the-test";

/// The server: records each message and each login attempt as JSON lines in `log`.
const SERVER: &str = r#"
import json, ssl, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
port, log, cert, key, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
tls = cert != "-"
def record(entry):
    with open(log, "a") as f:
        f.write(json.dumps(entry) + "\n")
class Handler:
    async def handle_DATA(self, server, session, envelope):
        record({"message": envelope.content.decode("utf8", "replace"), "from": envelope.mail_from,
                "to": envelope.rcpt_tos, "tls": session.ssl is not None,
                "login": session.auth_data.decode() if isinstance(session.auth_data, bytes) else None})
        return "250 OK"
def auth(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == b"lifeboat" and data.password == password.encode()
    record({"auth": mechanism, "ok": ok, "tls": session.ssl is not None})
    return AuthResult(success=ok, handled=False, auth_data=data.login if ok else None)
kw = {}
if tls:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    kw = {"tls_context": ctx, "require_starttls": True}
c = Controller(Handler(), hostname="127.0.0.1", port=port, authenticator=auth,
               auth_require_tls=tls, auth_required=False, **kw)
c.start()
print("ready", flush=True)
import time
time.sleep(3600)
"#;

struct Smtp {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Smtp {
    /// A server on a free port; with `tls`, a certificate for localhost is made in `dir`.
    fn start(dir: &Path, tls: bool) -> Self {
        let (cert, key) = if tls {
            // A certificate authority, and a certificate for localhost it signs (rustls takes
            // no self-signed CA as a server's own certificate).
            let openssl = |args: &[&str]| {
                let out = Command::new("openssl")
                    .args(args)
                    .current_dir(dir)
                    .output()
                    .expect("run openssl");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            fs::write(
                dir.join("leaf.ext"),
                "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
            )
            .unwrap();
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=lifeboat-test-ca",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ]);
            openssl(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=localhost",
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
            ]);
            openssl(&[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                "leaf.ext",
                "-out",
                "cert.pem",
            ]);
            (
                dir.join("cert.pem").display().to_string(),
                dir.join("key.pem").display().to_string(),
            )
        } else {
            ("-".to_owned(), "-".to_owned())
        };
        let port = free_port();
        let log = dir.join(format!("smtp-{port}.jsonl"));
        let mut child = Command::new("python3")
            .args(["-c", SERVER, &port.to_string()])
            .arg(&log)
            .args([&cert, &key, SMTP_PASSWORD])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the SMTP server (pip install aiosmtpd; .ci/run does it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP server did not start");
        Self { child, port, log }
    }

    fn entries(&self) -> Vec<Value> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn wait_for(&self, what: &str, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let e = self.entries();
            if ok(&e) {
                return e;
            }
            assert!(Instant::now() < deadline, "no {what}; the server saw {e:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A plan whose one asset's backup fails, with an e-mail notifier for failures.
fn plan(sb: &Sandbox, port: u16, ca: Option<&Path>) {
    let ca = ca.map_or_else(String::new, |c| format!("ca-file = {}\n", toml_path(c)));
    sb.write_plan(&format!(
        "[assets.ledger]\ntype = \"command\"\nbackup = \"echo partial; exit 3\"\n\n\
         [notify.mail]\ntype = \"email\"\nsmtp = \"localhost:{port}\"\nfrom = \"Lifeboat <lifeboat@example.com>\"\n\
         to = [\"ops@example.com\", \"dba@example.com\"]\nusername = \"lifeboat\"\npassword-env = \"SMTP_PW\"\n{ca}\
         on = [\"failure\"]\n"
    ));
}

#[test]
fn a_failed_backup_is_mailed_over_starttls_with_the_login_from_the_environment() {
    let sb = Sandbox::new();
    let smtp = Smtp::start(sb.path(), true);
    plan(&sb, smtp.port, Some(&sb.join("ca.pem")));
    sb.run_ok(&["init"]);
    let run = Run::from(
        sb.cmd(&["backup"])
            .env("SMTP_PW", SMTP_PASSWORD)
            .output()
            .unwrap(),
    );
    assert_ne!(run.code, 0, "the backup was meant to fail");
    let entries = smtp.wait_for("message", |e| e.iter().any(|x| x.get("message").is_some()));
    let auth: Vec<&Value> = entries.iter().filter(|e| e.get("auth").is_some()).collect();
    assert_eq!(auth.len(), 1, "{entries:?}");
    assert_eq!(auth[0]["ok"], true);
    assert_eq!(auth[0]["tls"], true, "the login crossed the wire in clear");
    let m = entries.iter().find(|e| e.get("message").is_some()).unwrap();
    assert_eq!(m["tls"], true);
    assert_eq!(m["login"], "lifeboat");
    assert_eq!(m["from"], "lifeboat@example.com");
    assert_eq!(
        m["to"],
        serde_json::json!(["ops@example.com", "dba@example.com"])
    );
    let text = m["message"].as_str().unwrap();
    assert!(text.contains("Subject: [ALERT] lifeboat it:"), "{text}");
    assert!(
        text.contains("event: failure") && text.contains("asset: ledger"),
        "{text}"
    );
    assert!(!text.contains(SMTP_PASSWORD));
}

#[test]
fn a_wrong_password_is_reported_without_the_password_and_no_tls_means_no_mail() {
    let sb = Sandbox::new();
    let smtp = Smtp::start(sb.path(), true);
    plan(&sb, smtp.port, Some(&sb.join("ca.pem")));
    sb.run_ok(&["init"]);
    let wrong = "not-the-Pa55word";
    let run = Run::from(sb.cmd(&["backup"]).env("SMTP_PW", wrong).output().unwrap());
    assert!(run.stderr.contains("notify mail (email)"), "{}", run.stderr);
    assert!(!run.stderr.contains(wrong) && !run.stdout.contains(wrong));
    let entries = smtp.entries();
    assert!(
        entries
            .iter()
            .any(|e| e["auth"].is_string() && e["ok"] == false),
        "{entries:?}"
    );
    assert!(
        entries.iter().all(|e| e.get("message").is_none()),
        "{entries:?}"
    );

    // A server that offers no STARTTLS hears nothing: no login, no message.
    let dir = sb.join("plain");
    fs::create_dir_all(&dir).unwrap();
    let plain = Smtp::start(&dir, false);
    plan(&sb, plain.port, None);
    let run = Run::from(
        sb.cmd(&["backup"])
            .env("SMTP_PW", SMTP_PASSWORD)
            .output()
            .unwrap(),
    );
    assert!(run.stderr.contains("notify mail (email)"), "{}", run.stderr);
    std::thread::sleep(Duration::from_millis(500));
    assert!(plain.entries().is_empty(), "{:?}", plain.entries());
}
