//! `checkJoin`: asks the API server which meeting node hosts a conference.
//!
//! The seed platform answers with `mcuHost`, the node every later request
//! must go to. The reply has its own envelope (`code`, `results`), not the
//! `{status, result}` of the node's API.

use url::Url;

use super::client::read_body;
use super::error::ClientError;
use super::wire::{CHECK_JOIN_PATH, CheckJoinReply, CheckJoinRequest, CheckJoinResult};
use crate::model::Secret;
use crate::platform::http::retry_after;

/// Looks up the conference `account` on the API server and returns what it
/// says, including the node to use.
pub async fn check_join(
    http: &reqwest::Client,
    api_server: &Url,
    account: &str,
    password: Option<&Secret>,
    participant_name: &str,
) -> Result<CheckJoinResult, ClientError> {
    const CALL: &str = "checkJoin";
    let url = api_server
        .join(CHECK_JOIN_PATH)
        .map_err(|err| ClientError::Protocol {
            call: CALL,
            reason: format!("bad API server URL: {err}"),
        })?;
    let request = CheckJoinRequest {
        join_account: account.to_owned(),
        join_pwd: password.cloned(),
        participant_name: participant_name.to_owned(),
    };
    let response = http
        .post(url)
        .json(&request)
        .send()
        .await
        .map_err(|err| ClientError::transport(CALL, err))?;
    let status = response.status();
    if status.is_server_error() {
        return Err(ClientError::Transient {
            call: CALL,
            reason: format!("HTTP {}", status.as_u16()),
            retry_after: retry_after(response.headers()),
        });
    }
    let body = read_body(CALL, response).await?;
    let reply: CheckJoinReply =
        serde_json::from_slice(&body).map_err(|err| ClientError::Protocol {
            call: CALL,
            reason: err.to_string(),
        })?;
    match (reply.code.as_str(), reply.results) {
        ("200", Some(result)) if !result.mcu_host.is_empty() => Ok(result),
        ("403", _) => Err(ClientError::Forbidden {
            call: CALL,
            message: format!("the password for `{account}` was refused"),
        }),
        ("404", _) => Err(ClientError::NotFound {
            call: CALL,
            message: format!("no conference `{account}`"),
        }),
        (code, _) => Err(ClientError::Rejected {
            call: CALL,
            status: Some(status.as_u16()),
            message: format!("answered code {code:?} without a meeting node"),
        }),
    }
}

/// The node URL for an `mcuHost`: used as is when it has a scheme, otherwise
/// with the API server's scheme (`xxx.example.cn` → `https://xxx.example.cn/`).
pub fn node_url(api_server: &Url, mcu_host: &str) -> Result<Url, url::ParseError> {
    if mcu_host.contains("://") {
        Url::parse(mcu_host)
    } else {
        Url::parse(&format!(
            "{}://{}/",
            api_server.scheme(),
            mcu_host.trim_end_matches('/')
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_urls_take_the_api_servers_scheme() {
        let api = Url::parse("https://api.example.cn/").unwrap();
        assert_eq!(
            node_url(&api, "mcu1.example.cn").unwrap().as_str(),
            "https://mcu1.example.cn/"
        );
        let local = Url::parse("http://127.0.0.1:8440/").unwrap();
        assert_eq!(
            node_url(&local, "127.0.0.1:8440").unwrap().as_str(),
            "http://127.0.0.1:8440/"
        );
        assert_eq!(
            node_url(&api, "http://other:80/").unwrap().as_str(),
            "http://other/"
        );
    }
}
