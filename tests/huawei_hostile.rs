//! Property tests over the Huawei decoders of outside input: the meeting
//! socket's pushes and the enterprise webhook's callbacks. Whatever they
//! are given — real pushes with any node replaced by any JSON, text cut
//! short or spliced, bytes that are not JSON — they must not panic; a push
//! that cannot be read is an error and changes nothing; a callback that
//! cannot be verified is refused.

use proptest::prelude::*;
use serde_json::{Value, json};

use usher::model::Secret;
use usher::platform::WebhookRequest;
use usher::platform::huawei::decode::{Decoder, Frame};
use usher::platform::huawei::webhook::Webhook;
use usher::platform::huawei::wire;

/// Pushes as the simulator and the vendor's examples write them.
fn samples() -> Vec<Value> {
    let envelope = |action: &str, mode: i64, body: Value| {
        let mut body = body;
        body["action"] = json!(action);
        body["msgMode"] = json!(mode);
        body["version"] = json!(1);
        body["msgID"] = json!("239fbd1662d111eb980abbd127030a68");
        body["confID"] = json!("900487914");
        body["createTime"] = json!(1_611_993_595_029_i64);
        body
    };
    vec![
        envelope(
            wire::PARTICIPANTS,
            0,
            json!({"data": [{"pid": "p1", "mode": 0, "pinfoMap": {"NAME": "Ada", "ROLE": "1", "STATE": "0", "ADDTIME": "1700000000000", "CLICENT_LOGIN_TYPE": "1"}}]}),
        ),
        envelope(
            wire::PARTICIPANTS,
            1,
            json!({"data": [{"pid": "p1", "mode": 0, "pinfoMap": {"MUTE": "1", "SHARE": "1"}}, {"pid": "p2", "mode": 1}]}),
        ),
        envelope(
            wire::WAITING_LIST,
            1,
            json!({"data": [{"pid": "w1", "mode": 0, "delType": 0, "pinfoMap": {"NAME": "Cy", "WAITINGSTATE": "1", "CLIENT_LOGIN_TYPE": "1"}}]}),
        ),
        envelope(
            wire::DYNAMIC_INFO,
            0,
            json!({"state": "Created", "lock": 1, "mute": 0, "mode": "FREE", "picNum": 1}),
        ),
        envelope(
            wire::BASIC_INFO,
            0,
            json!({"displayID": "900487914", "title": "Tom's Meeting", "startTime": "1611988484164", "pwds": [{"role": "chair", "pwd": "******"}], "owner": "Tom", "scheduledStartTime": "1611988483700"}),
        ),
        envelope(wire::SPEAKER_CHANGE, 0, json!({"data": [{"pid": "p1"}]})),
        json!({"action": "Subscribe", "sequence": "1", "data": {"returnCode": 0, "returnDesc ": "SUCCESS"}}),
    ]
}

/// A JSON value of any shape, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[^\"]{0,12}".prop_map(Value::from),
        prop::sample::select(vec!["0", "1", "Destroyed", "1e400", "-0", "NaN", ""])
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[A-Za-z_]{1,10}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Replaces the `pick`th node of `value` (depth first) by `with`.
fn replace_node(value: &mut Value, pick: &mut usize, with: &Value) {
    if *pick == 0 {
        *value = with.clone();
        return;
    }
    *pick -= 1;
    match value {
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| replace_node(item, pick, with)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|item| replace_node(item, pick, with)),
        _ => {}
    }
}

/// A decoder that has taken a roster, so incrementals apply.
fn subscribed() -> Decoder {
    let mut decoder = Decoder::new("900487914");
    decoder.begin_snapshot();
    for sample in samples().iter().take(1) {
        decoder
            .decode(&sample.to_string(), 1.0)
            .expect("a sample reads");
    }
    let waiting =
        json!({"action": wire::WAITING_LIST, "msgMode": 0, "version": 2, "msgID": "w", "data": []});
    decoder
        .decode(&waiting.to_string(), 1.0)
        .expect("a sample reads");
    decoder
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A real push with any node replaced: read or refused, never a panic,
    /// and a refusal leaves the decoder as it was.
    #[test]
    fn pushes_with_any_node_replaced(which in 0usize..7, pick in 0usize..40, with in json_value()) {
        let mut push = samples()[which].clone();
        let mut at = pick;
        replace_node(&mut push, &mut at, &with);
        let mut decoder = subscribed();
        let text = push.to_string();
        if decoder.decode(&text, 2.0).is_err() {
            // Refused, and forgotten: the same push mended reads as new.
            let mended = samples()[which].to_string();
            prop_assert_eq!(
                format!("{:?}", decoder.decode(&mended, 3.0)),
                format!("{:?}", subscribed().decode(&mended, 3.0))
            );
        }
    }

    /// Text cut short or spliced, and bytes that are no JSON at all.
    #[test]
    fn mangled_text(which in 0usize..7, cut in 0usize..400, insert in "[\\x00-\\x7f]{0,8}") {
        let text = samples()[which].to_string();
        let mut mangled: String = text.chars().take(cut).collect();
        mangled.push_str(&insert);
        let mut decoder = subscribed();
        // Cut text is mostly no JSON at all; what still reads must name
        // only the sample's own people.
        if let Ok(Frame::Events(events)) = decoder.decode(&mangled, 2.0) {
            for event in events {
                if let Some(uuid) = event.participant_uuid() {
                    prop_assert!(["p1", "p2", "w1"].contains(&uuid), "{event:?}");
                }
            }
        }
    }

    /// Any body at the webhook: refused (and counted) unless signed.
    #[test]
    fn webhook_bodies(body in prop::collection::vec(any::<u8>(), 0..300), with in json_value()) {
        let hook = Webhook::new(Some(Secret::new("s3cret")));
        for body in [body, with.to_string().into_bytes()] {
            let request = WebhookRequest {
                query: String::new(),
                headers: axum::http::HeaderMap::new(),
                body: body.into(),
            };
            let refused = hook.check(&request).expect_err("nothing unsigned gets through");
            prop_assert_eq!(refused.status, 401);
        }
        prop_assert_eq!(hook.refusals(), 2);
    }
}
