//! The dashboard in a real browser: Debian's Chromium, headless, driven through WebDriver
//! (chromedriver) against a real daemon and repository. Screenshots of each page go to
//! `target/tmp/dashboard-screenshots/`.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator};
use lifeboat_testing::free_port;
use serde_json::{Value, json};

use crate::{
    daemon::{Daemon, TOKEN},
    util::{PASSWORD, Sandbox, toml_path},
};

const ALICE_PASSWORD: &str = "alice-Pa55word-for-the-test";
const BOB_PASSWORD: &str = "bob-Pa55word-for-the-test";

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start(dir: &Path) -> Self {
        let port = free_port();
        let child = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("chromedriver.log")).unwrap())
            .spawn()
            .expect("start chromedriver (Debian's chromium-driver; .ci/run installs it)");
        let deadline = Instant::now() + Duration::from_secs(30);
        // Listening is enough: the session request waits for it to be ready.
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, port }
    }

    /// A headless Chromium that reaches nothing but 127.0.0.1.
    async fn browser(&self, profile: &Path) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-quic", "--window-size=1280,1000",
                    // No host name resolves, and anything not on loopback goes to a proxy
                    // that is not there: only 127.0.0.1 is reachable.
                    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                    "--proxy-server=127.0.0.1:9",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        ClientBuilder::rustls()
            .expect("TLS roots for the WebDriver client")
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("open a Chromium session")
    }
}

/// The browser on one daemon, with the screenshots and page sources it collected.
struct Page<'a> {
    c: &'a Client,
    base: String,
    shots: PathBuf,
    sources: Vec<String>,
}

impl Page<'_> {
    async fn goto(&mut self, path: &str) {
        self.c.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    async fn source(&mut self) -> String {
        let s = self.c.source().await.unwrap();
        self.sources.push(s.clone());
        s
    }

    async fn shot(&mut self, name: &str) {
        let png = self.c.screenshot().await.unwrap();
        fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
        let _ = self.source().await;
    }

    async fn path(&self) -> String {
        self.c.current_url().await.unwrap().path().to_owned()
    }

    /// Waits for the element `loc` names (up to WebDriver's default wait) and clicks it.
    async fn click(&self, loc: Locator<'_>) {
        self.c
            .wait()
            .for_element(loc)
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// The attribute `attr` of the element `loc` names, once it is there.
    async fn attr_of(&self, loc: Locator<'_>, attr: &str) -> String {
        let what = format!("{loc:?}");
        self.c
            .wait()
            .for_element(loc)
            .await
            .unwrap()
            .attr(attr)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no {attr} on {what}"))
    }

    /// The page's source once it holds `needle` (up to 20 s after a click or a submit: the
    /// browser may still be on the page before), else a panic with what it shows.
    async fn wait_text(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.source().await;
            if s.contains(needle) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "the page never showed {needle:?}:\n{s}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (up to 10 s) for the browser to arrive at `want` after a click.
    async fn arrive(&self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.path().await != want {
            assert!(
                Instant::now() < deadline,
                "the browser stayed at {}, not {want}",
                self.path().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn login(&mut self, name: &str, password: &str) {
        self.goto("/login").await;
        self.c
            .find(Locator::Id("name"))
            .await
            .unwrap()
            .send_keys(name)
            .await
            .unwrap();
        self.c
            .find(Locator::Id("password"))
            .await
            .unwrap()
            .send_keys(password)
            .await
            .unwrap();
        self.click(Locator::Css("form[action='/login'] button"))
            .await;
    }

    async fn logout(&mut self) {
        self.click(Locator::Css("form[action='/logout'] button"))
            .await;
    }

    /// Submits a form of the browser's own to `action`, with the fields given (a forged or
    /// hand-made request, as a script on another page could send).
    async fn post_form(&mut self, action: &str, fields: &[(&str, &str)]) {
        let fields: Vec<Value> = fields.iter().map(|(k, v)| json!([k, v])).collect();
        self.c
            .execute(
                "const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];\
                 for (const [k, v] of arguments[1]) { const i = document.createElement('input');\
                 i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i); }\
                 document.body.appendChild(f); f.submit();",
                vec![json!(action), json!(fields)],
            )
            .await
            .unwrap();
        // Let the navigation finish before anything reads the page.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    /// The bytes `href` serves to this browser session (its cookie included).
    async fn fetch(&self, href: &str) -> Vec<u8> {
        let v = self
            .c
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.arrayBuffer())\
                 .then(b => done(Array.from(new Uint8Array(b)))).catch(e => done(String(e)));",
                vec![json!(href)],
            )
            .await
            .unwrap();
        let Value::Array(items) = v else {
            panic!("fetch {href} failed in the browser: {v}");
        };
        items
            .iter()
            .map(|x| u8::try_from(x.as_u64().unwrap()).unwrap())
            .collect()
    }

    /// Reloads `path` every 500 ms until `ok` holds for its source.
    async fn wait_for(&mut self, path: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            self.goto(path).await;
            let s = self.source().await;
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last page:\n{s}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn audit_lines(sb: &Sandbox) -> Vec<Value> {
    fs::read_to_string(sb.join(".lifeboat/audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn has_audit(lines: &[Value], user: &str, what: &str, outcome: &str) -> bool {
    lines
        .iter()
        .any(|l| l["user"] == user && l["what"] == what && l["outcome"] == outcome)
}

#[test]
fn dashboard_in_chromium_logs_in_backs_up_browses_drills_and_refuses_forged_or_read_only_actions() {
    let sb = Sandbox::new();
    let data = sb.join("data");
    fs::create_dir_all(data.join("reports/2026")).unwrap();
    fs::write(data.join("index.html"), "<h1>tool hub</h1>\n").unwrap();
    let blob: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(data.join("reports/2026/q1.bin"), &blob).unwrap();
    fs::write(data.join("reports/notes.txt"), "quarterly\n").unwrap();

    // Users' hashes from the command operators use, kept in files the plan names.
    for (user, password) in [("alice", ALICE_PASSWORD), ("bob", BOB_PASSWORD)] {
        fs::write(sb.join(&format!("{user}.pw")), password).unwrap();
        let out = sb.run_ok(&["hash-password", "--password-file", &format!("{user}.pw")]);
        fs::write(sb.join(&format!("{user}.hash")), out.stdout.trim()).unwrap();
        fs::remove_file(sb.join(&format!("{user}.pw"))).unwrap();
    }
    let restored = sb.join("restored");
    sb.write_plan(&format!(
        "[assets.web]\ntype = \"files\"\npaths = [{data}]\n\n\
         [[scenarios]]\nname = \"web-lost\"\ndescription = \"The web files are gone\"\n\
         steps = [{{ restore = \"web\", to = {restored} }}, {{ run = \"test -f {q1}\" }}]\n\n\
         [dashboard]\nlogin = \"always\"\n\
         [dashboard.users.alice]\nrole = \"operator\"\npassword-hash-file = {alice}\n\
         [dashboard.users.bob]\nrole = \"viewer\"\npassword-hash-file = {bob}\n",
        data = toml_path(&data),
        restored = toml_path(&restored),
        q1 = restored.join("reports/2026/q1.bin").display(),
        alice = toml_path(&sb.join("alice.hash")),
        bob = toml_path(&sb.join("bob.hash")),
    ));
    sb.run_ok(&["init"]);
    let daemon = Daemon::start(&sb, &[]);
    let driver = Driver::start(sb.path());
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    fs::create_dir_all(&shots).unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = driver.browser(&sb.join("chromium-profile")).await;
        let mut p = Page {
            c: &client,
            base: format!("http://127.0.0.1:{}", daemon.port),
            shots: shots.clone(),
            sources: Vec::new(),
        };

        // login = "always": even on loopback the overview sends a stranger to the login page.
        p.goto("/").await;
        p.arrive("/login").await;
        p.shot("login").await;
        p.login("bob", "not-his-password").await;
        p.wait_text("That name and password do not match.").await;

        // A viewer reads, sees no action, and is refused when he forges one with his token.
        p.login("bob", BOB_PASSWORD).await;
        p.arrive("/").await;
        let page = p.source().await;
        assert!(page.contains("bob (viewer)"), "{page}");
        assert!(page.contains("href=\"/assets/web\""));
        assert!(
            p.c.find(Locator::Css("form[action='/actions/backup']"))
                .await
                .is_err()
        );
        let bob_csrf = p
            .attr_of(
                Locator::Css("form[action='/logout'] input[name='csrf']"),
                "value",
            )
            .await;
        p.post_form("/actions/backup", &[("csrf", &bob_csrf)]).await;
        p.wait_text("bob may read but not start jobs").await;
        p.goto("/").await;
        p.logout().await;
        p.arrive("/login").await;

        // An operator: a backup started from the page, watched on the overview (which its
        // script refreshes) until it shows the snapshot.
        p.login("alice", ALICE_PASSWORD).await;
        p.arrive("/").await;
        assert!(p.source().await.contains("no snapshot"));
        p.shot("overview-empty").await;
        p.click(Locator::Css("form[action='/actions/backup'] button"))
            .await;
        let deadline = Instant::now() + Duration::from_secs(120);
        while p.c.source().await.unwrap().contains("no snapshot") {
            assert!(
                Instant::now() < deadline,
                "the overview never showed the backup"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert_eq!(p.path().await, "/");
        let snaps = sb.snapshots_of("web");
        assert_eq!(snaps.len(), 1, "one backup, as the CLI lists it");
        let short = snaps[0]["short_id"].as_str().unwrap().to_owned();
        assert!(p.source().await.contains(&short));
        p.shot("overview").await;

        // The asset page lists it; the snapshot page shows the manifest and the tree.
        p.goto("/assets/web").await;
        assert!(
            p.source()
                .await
                .contains(&format!("/assets/web/snapshots/{short}"))
        );
        p.shot("asset").await;
        p.click(Locator::LinkText(&short)).await;
        let page = p.wait_text("Contents").await;
        assert!(
            page.contains("3 files, "),
            "the manifest's file count: {page}"
        );
        let dir = format!("files{}", data.display());
        p.goto(&format!("/assets/web/snapshots/{short}?path={dir}/reports"))
            .await;
        p.shot("snapshot").await;
        let href = p
            .attr_of(Locator::Css("a[aria-label='download notes.txt']"), "href")
            .await;
        assert_eq!(p.fetch(&href).await, b"quarterly\n");
        p.click(Locator::LinkText("2026/")).await;
        let href = p
            .attr_of(Locator::Css("a[aria-label='download q1.bin']"), "href")
            .await;
        assert!(
            p.fetch(&href).await == blob,
            "the downloaded file differs from the original"
        );
        // The folder as a tar archive, unpacked by tar(1).
        p.goto(&format!("/assets/web/snapshots/{short}?path={dir}"))
            .await;
        let href = p
            .attr_of(
                Locator::Css("a[aria-label='download reports as a tar archive']"),
                "href",
            )
            .await;
        fs::write(sb.join("reports.tar"), p.fetch(&href).await).unwrap();
        fs::create_dir(sb.join("untarred")).unwrap();
        let tar = std::process::Command::new("tar")
            .args(["-xf", "../reports.tar"])
            .current_dir(sb.join("untarred"))
            .status()
            .unwrap();
        assert!(tar.success());
        assert_eq!(
            fs::read(sb.join("untarred/reports/2026/q1.bin")).unwrap(),
            blob
        );
        assert_eq!(
            fs::read(sb.join("untarred/reports/notes.txt")).unwrap(),
            b"quarterly\n"
        );

        // A drill from the page, and its report.
        p.goto("/drills").await;
        p.click(Locator::Css("form[action='/actions/drill'] button"))
            .await;
        p.wait_for("/drills", "the drill to be listed", |s| {
            s.contains("badge green\">passed")
        })
        .await;
        p.shot("drills").await;
        p.click(Locator::Css("td a[href^='/drills/']")).await;
        let page = p.wait_text("Recovery drill: it").await;
        assert!(page.contains("<td>web</td>"), "{page}");
        p.shot("drill-report").await;

        // A runbook's dry run changes nothing; a real run needs the scenario's name typed.
        p.goto("/runbooks").await;
        p.click(Locator::LinkText("Dry run web-lost")).await;
        let page = p.wait_text("Dry run of web-lost").await;
        assert!(page.contains("would run"), "{page}");
        assert!(!restored.exists(), "a dry run restored something");
        p.shot("dry-run").await;
        p.goto("/runbooks").await;
        p.c.find(Locator::Id("confirm-web-lost"))
            .await
            .unwrap()
            .send_keys("web")
            .await
            .unwrap();
        p.click(Locator::Css("form[action='/runbooks/web-lost/run'] button"))
            .await;
        p.wait_text("was not confirmed").await;
        assert!(!restored.exists());

        // The operator's own session, without its CSRF token: refused.
        p.goto("/").await;
        p.post_form("/actions/backup", &[("asset", "web")]).await;
        p.wait_text("CSRF token is missing or wrong").await;
        p.goto("/").await;
        p.post_form("/actions/backup", &[("asset", "web"), ("csrf", "forged")])
            .await;
        p.wait_text("CSRF token is missing or wrong").await;
        assert_eq!(
            sb.snapshots_of("web").len(),
            1,
            "a refused action started a backup"
        );

        p.goto("/activity").await;
        assert!(p.source().await.contains("chain intact"));
        p.shot("activity").await;
        p.goto("/runbooks").await;
        p.shot("runbooks").await;
        // A phone's width.
        p.c.set_window_size(390, 844).await.unwrap();
        p.goto("/").await;
        p.shot("overview-phone").await;

        for page in &p.sources {
            for secret in [PASSWORD, TOKEN, ALICE_PASSWORD, BOB_PASSWORD, "$argon2"] {
                assert!(!page.contains(secret), "a page shows a secret");
            }
        }
        client.close().await.unwrap();
    });

    let audit = audit_lines(&sb);
    assert!(has_audit(
        &audit,
        "alice",
        "dashboard: backup web",
        "started"
    ));
    assert!(has_audit(&audit, "alice", "dashboard: drill", "started"));
    assert!(has_audit(&audit, "bob", "dashboard: backup", "refused"));
    assert!(has_audit(&audit, "bob", "dashboard login", "refused"));
    assert!(has_audit(
        &audit,
        "alice",
        "dashboard: recover web-lost --yes",
        "refused"
    ));
    assert_eq!(
        audit
            .iter()
            .filter(|l| l["user"] == "alice"
                && l["what"] == "dashboard: backup"
                && l["outcome"] == "refused")
            .count(),
        2,
        "both forged actions are in the audit log"
    );
}
