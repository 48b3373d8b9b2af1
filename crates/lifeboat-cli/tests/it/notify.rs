//! Notifications from a CLI run: each notifier's payload as a local receiver gets it, retries,
//! a dead notifier that fails nothing, and secrets that never reach the output.

use lifeboat_testing::Receiver;

use crate::util::{Sandbox, toml_str};

const ROUTING_KEY: &str = "pd-routing-key-R0UT1NG";
const SLACK_SECRET_PATH: &str = "/slack/T000/B000/XXsecretXX";
const DISCORD_SECRET_PATH: &str = "/discord/api/webhooks/1234/DiScOrDtOkEn";

fn plan(sb: &Sandbox, rx: &Receiver, dead_port: u16) {
    sb.write_plan(&format!(
        "[assets.good]\ntype = \"command\"\nbackup = \"echo fine\"\n\n\
         [assets.bad]\ntype = \"command\"\nbackup = \"echo broken >&2; exit 3\"\n\n\
         [notify.chat]\ntype = \"slack\"\nurl-env = \"LB_SLACK_URL\"\non = [\"failure\"]\n\n\
         [notify.discord]\ntype = \"discord\"\nurl-env = \"LB_DISCORD_URL\"\non = [\"failure\"]\n\n\
         [notify.pager]\ntype = \"pagerduty\"\nrouting-key-env = \"LB_PD_KEY\"\nurl-env = \"LB_PD_URL\"\n\n\
         [notify.hook]\ntype = \"webhook\"\nurl = {hook}\non = [\"failure\", \"success\"]\n\n\
         [notify.hc]\ntype = \"healthchecks\"\nurl-env = \"LB_HC_URL\"\non = [\"success\", \"failure\"]\n\n\
         [notify.dead]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{dead_port}/gone\"\n",
        hook = toml_str(&rx.url("/hook")),
    ));
}

#[test]
fn each_notifier_gets_its_payload_and_none_fails_the_job() {
    let sb = Sandbox::new();
    let rx = Receiver::start();
    // A port that was free: nothing listens there, the notifier's tries are refused.
    let dead_port = lifeboat_testing::free_port();
    plan(&sb, &rx, dead_port);
    sb.run_ok(&["init"]);
    // Slack's first try gets a 503: the retry delivers it.
    rx.fail_next("/slack", 503);
    let run = sb
        .cmd(&["backup"])
        .env("LB_SLACK_URL", rx.url(SLACK_SECRET_PATH))
        .env("LB_DISCORD_URL", rx.url(DISCORD_SECRET_PATH))
        .env("LB_PD_KEY", ROUTING_KEY)
        .env("LB_PD_URL", rx.url("/pd"))
        .env("LB_HC_URL", rx.url("/hc/uuid-1"))
        .output()
        .unwrap();
    let run = crate::util::Run::from(run);
    // One asset failed: partial, whatever the notifiers did.
    assert_eq!(run.code, 3, "{}", run.stderr);

    let slack = rx.requests("/slack");
    assert_eq!(slack.len(), 2, "one refused try, one retry: {slack:#?}");
    let text = slack[1].json()["text"].as_str().unwrap().to_owned();
    assert!(text.contains("backup of bad failed"), "{text}");
    assert!(text.contains("exit"), "the error is told: {text}");

    // Discord gets the same message, in its own field.
    let discord = rx.requests("/discord");
    assert_eq!(discord.len(), 1, "{discord:#?}");
    let body = discord[0].json();
    assert_eq!(body["content"].as_str(), Some(text.as_str()), "{body:#}");
    assert!(body.get("text").is_none(), "{body:#}");
    assert!(
        !run.stdout.contains("DiScOrDtOkEn") && !run.stderr.contains("DiScOrDtOkEn"),
        "the webhook's token stays out of the output"
    );

    let pd = rx.requests("/pd");
    assert_eq!(pd.len(), 1, "{pd:#?}");
    let pd = pd[0].json();
    assert_eq!(pd["event_action"], "trigger");
    assert_eq!(pd["routing_key"], ROUTING_KEY);
    assert_eq!(pd["dedup_key"], "lifeboat/it/bad");
    assert_eq!(pd["payload"]["component"], "bad");
    assert_eq!(pd["payload"]["severity"], "error");

    let hook: Vec<serde_json::Value> = rx
        .requests("/hook")
        .iter()
        .map(lifeboat_testing::Received::json)
        .collect();
    assert_eq!(hook.len(), 2, "{hook:#?}");
    let kinds: Vec<(&str, &str)> = hook
        .iter()
        .map(|h| (h["kind"].as_str().unwrap(), h["asset"].as_str().unwrap()))
        .collect();
    assert!(kinds.contains(&("failure", "bad")), "{kinds:?}");
    assert!(kinds.contains(&("success", "good")), "{kinds:?}");
    assert!(
        hook.iter()
            .all(|h| h["plan"] == "it" && h["job"] == "backup")
    );

    let hc: Vec<String> = rx
        .requests("/hc")
        .iter()
        .map(|r| r.target.clone())
        .collect();
    assert!(hc.contains(&"/hc/uuid-1/start".to_owned()), "{hc:?}");
    assert!(hc.contains(&"/hc/uuid-1".to_owned()), "{hc:?}");
    assert!(hc.contains(&"/hc/uuid-1/fail".to_owned()), "{hc:?}");

    // The dead notifier is reported, by name, without its URL.
    assert!(run.stderr.contains("notify dead"), "{}", run.stderr);
    for secret in [ROUTING_KEY, SLACK_SECRET_PATH, "XXsecretXX"] {
        assert!(!run.stderr.contains(secret), "{secret} in {}", run.stderr);
        assert!(!run.stdout.contains(secret), "{secret} in {}", run.stdout);
    }
    let audit = std::fs::read_to_string(sb.join(".lifeboat/audit.jsonl")).unwrap();
    assert!(!audit.contains(ROUTING_KEY) && !audit.contains("XXsecretXX"));
}

#[test]
fn notifications_wait_for_nothing_when_no_event_matches() {
    let sb = Sandbox::new();
    let rx = Receiver::start();
    sb.write_plan(&format!(
        "[assets.good]\ntype = \"command\"\nbackup = \"echo fine\"\n\n\
         [notify.hook]\ntype = \"webhook\"\nurl = {}\non = [\"drill-failed\"]\n",
        toml_str(&rx.url("/hook"))
    ));
    sb.run_ok(&["init"]);
    sb.run_ok(&["backup"]);
    // Deliveries are made before the command exits.
    assert!(rx.requests("/").is_empty(), "{:#?}", rx.requests("/"));
}

/// `[plan] min-free`: a backup that would start with less free space than that in the spool
/// directory does not start, says where and how much, and raises `disk-space`.
#[test]
fn a_backup_without_the_free_space_the_plan_asks_does_not_start() {
    let sb = Sandbox::new();
    let rx = Receiver::start();
    let plan = |min_free: &str| {
        format!(
            "version = 1\n\n[plan]\nname = \"it\"\nmin-free = \"{min_free}\"\n\n\
             [repositories.main]\nurl = {}\npassword-env = \"{}\"\n\n\
             [assets.good]\ntype = \"command\"\nbackup = \"echo fine\"\n\n\
             [notify.hook]\ntype = \"webhook\"\nurl = {}\non = [\"disk-space\"]\n",
            crate::util::toml_path(&sb.repo()),
            crate::util::PASSWORD_ENV,
            toml_str(&rx.url("/hook"))
        )
    };
    // More than any disk here has.
    sb.write_raw_plan(&plan("1000TB"));
    sb.run_ok(&["init"]);
    let run = sb.run(&["backup"]).expect_code(1);
    assert!(
        run.stderr
            .contains("backup not started: the spool directory")
            && run
                .stderr
                .contains("less than the plan's min-free of 909.5 TiB"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("LIFEBOAT_SPOOL_DIR"), "{}", run.stderr);
    assert!(sb.snapshots().is_empty(), "{:#?}", sb.snapshots());
    let sent = rx.requests("/hook");
    assert_eq!(sent.len(), 1, "{sent:#?}");
    let body = String::from_utf8_lossy(&sent[0].body).into_owned();
    assert!(
        body.contains("disk-space") && body.contains("backup not started"),
        "{body}"
    );

    sb.write_raw_plan(&plan("1KB"));
    sb.run_ok(&["backup"]);
    assert_eq!(sb.snapshots().len(), 1);
    assert_eq!(rx.requests("/hook").len(), 1, "no event when there is room");
}
