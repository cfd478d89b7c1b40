//! The one STS call a KMS user needs, GetCallerIdentity, in STS's query protocol (XML).

use axum::http::StatusCode;

use crate::sigv4::VerifiedRequest;

const NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Answers an STS request; returns the status and XML body.
pub fn handle(request: &VerifiedRequest, body: &[u8], request_id: &str) -> (StatusCode, String) {
    let action = form_urlencoded::parse(body)
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if action != "GetCallerIdentity" {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            &format!("Could not find operation {action} for version 2011-06-15"),
            request_id,
        );
    }
    let p = request.principal();
    (
        StatusCode::OK,
        format!(
            "<GetCallerIdentityResponse xmlns=\"{NS}\">\n  <GetCallerIdentityResult>\n    <Arn>{}</Arn>\n    <UserId>{}</UserId>\n    <Account>{}</Account>\n  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    <RequestId>{request_id}</RequestId>\n  </ResponseMetadata>\n</GetCallerIdentityResponse>\n",
            xml_escape(p.arn()),
            xml_escape(p.user_id()),
            xml_escape(p.account().as_str()),
        ),
    )
}

/// STS's error document.
pub fn error(
    status: StatusCode,
    code: &str,
    message: &str,
    request_id: &str,
) -> (StatusCode, String) {
    (
        status,
        format!(
            "<ErrorResponse xmlns=\"{NS}\">\n  <Error>\n    <Type>Sender</Type>\n    <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n",
            xml_escape(code),
            xml_escape(message)
        ),
    )
}
