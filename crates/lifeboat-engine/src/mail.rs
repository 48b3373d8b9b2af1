//! E-mail notifications: one plain-text message per event over SMTP, always encrypted
//! (STARTTLS on any port but 465, TLS from the first byte on 465). A server that does not
//! offer STARTTLS gets nothing, the password included. The password is read from its
//! secret source at each send and never appears in an error.

use std::time::Duration;

use lettre::{
    Message, SmtpTransport, Transport,
    message::{Mailbox, header::ContentType},
    transport::smtp::{
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
    },
};
use lifeboat_plan::EmailSettings;

use crate::secrets::read_secret;

/// Per SMTP command, connection included.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Sends one message; the error says whether trying again may help (a refused login or
/// address will not).
pub(crate) fn send(
    settings: &EmailSettings,
    subject: &str,
    body: &str,
) -> Result<(), (String, bool)> {
    let permanent = |why: String| (why, false);
    let mailbox = |a: &str| {
        a.parse::<Mailbox>()
            .map_err(|e| permanent(format!("address {a:?}: {e}")))
    };
    let mut message = Message::builder()
        .from(mailbox(&settings.from)?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for to in &settings.to {
        message = message.to(mailbox(to)?);
    }
    let message = message
        .body(body.to_owned())
        .map_err(|e| permanent(format!("build the message: {e}")))?;

    let mut tls = TlsParameters::builder(settings.host.clone());
    if let Some(ca) = &settings.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| permanent(format!("read ca-file {}: {e}", ca.display())))?;
        let cert = Certificate::from_pem(&pem)
            .map_err(|e| permanent(format!("ca-file {}: {e}", ca.display())))?;
        tls = tls.add_root_certificate(cert);
    }
    let tls = tls
        .build_rustls()
        .map_err(|e| permanent(format!("TLS settings: {e}")))?;
    let tls = if settings.port == 465 {
        Tls::Wrapper(tls)
    } else {
        Tls::Required(tls)
    };
    let mut transport = SmtpTransport::builder_dangerous(settings.host.as_str())
        .port(settings.port)
        .tls(tls)
        .timeout(Some(TIMEOUT));
    let mut password = None;
    if let Some((user, source)) = &settings.login {
        let secret =
            read_secret(source).map_err(|e| permanent(format!("read the SMTP password: {e}")))?;
        password = Some(secret.expose().to_owned());
        transport =
            transport.credentials(Credentials::new(user.clone(), secret.expose().to_owned()));
    }
    transport.build().send(&message).map(|_| ()).map_err(|e| {
        let mut why = format!("SMTP {}:{}: {e}", settings.host, settings.port);
        if let Some(p) = password.as_deref().filter(|p| !p.is_empty()) {
            why = why.replace(p, "***");
        }
        (why, !e.is_permanent())
    })
}
