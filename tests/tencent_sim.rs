//! The Tencent simulator is faithful to the platform's wire: raw HTTP calls
//! against it over loopback, and the callbacks it would send, read as they
//! leave it.

use std::net::SocketAddr;

use serde_json::{Value, json};

use usher::clock::unix_now;
use usher::model::Secret;
use usher::platform::tencent::auth;
use usher::sim::RoomSpec;
use usher::sim::step::{Joiner, Step};
use usher::sim::tencent::room::RoomSetup;
use usher::sim::tencent::sender::Delivery;
use usher::sim::tencent::{DEMO_SECRET_KEY, TencentSimOptions, TencentSimulator};

const APP: u64 = 1_400_000_000;
const ROOM: &str = "room-a";

async fn simulator(token: Option<&str>) -> TencentSimulator {
    let sim = TencentSimulator::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        Vec::new(),
        TencentSimOptions {
            callback_token: token.map(Secret::new),
            collect_callbacks: true,
            ..TencentSimOptions::default()
        },
    )
    .await
    .expect("the simulator starts");
    sim.add_room_with(
        RoomSpec {
            participants: vec![Joiner::host("Ada"), Joiner::guest("Bob")],
            ..RoomSpec::new(ROOM)
        },
        RoomSetup {
            name: "Room A".into(),
            owner: "ada".into(),
            seats: 3,
            schedule: None,
        },
    );
    sim
}

fn sig() -> String {
    auth::issue(
        APP,
        "administrator",
        &Secret::new(DEMO_SECRET_KEY),
        unix_now() as i64,
        3600,
    )
    .expose()
    .to_owned()
}

/// `POST /v4/<path>` with the admin query string (`usersig` as given) and
/// `body` as written; the HTTP status and the JSON answer.
async fn call_raw(
    sim: &TencentSimulator,
    path: &str,
    identifier: &str,
    usersig: &str,
    body: &str,
) -> (u16, Value) {
    let mut url = sim.base_url().join(&format!("v4/{path}")).unwrap();
    url.query_pairs_mut()
        .append_pair("sdkappid", &APP.to_string())
        .append_pair("identifier", identifier)
        .append_pair("usersig", usersig)
        .append_pair("random", "12345")
        .append_pair("contenttype", "json");
    let response = reqwest::Client::new()
        .post(url)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn call(sim: &TencentSimulator, path: &str, body: Value) -> Value {
    let (status, answer) = call_raw(sim, path, "administrator", &sig(), &body.to_string()).await;
    assert_eq!(status, 200);
    answer
}

fn code(answer: &Value) -> i64 {
    answer["ErrorCode"]
        .as_i64()
        .expect("every answer has an ErrorCode")
}

/// The callbacks the simulator has let out, once it has.
async fn callbacks(sim: &TencentSimulator) -> Vec<(Vec<(String, String)>, Value)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while sim.callbacks_pending() > 0 {
        assert!(std::time::Instant::now() < deadline, "callbacks stuck");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    sim.take_collected()
        .into_iter()
        .map(|Delivery { query, body }| {
            let query = url::form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            (query, serde_json::from_str(&body).unwrap())
        })
        .collect()
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

#[tokio::test]
async fn every_answer_is_http_200_with_the_envelope_and_only_post_is_served() {
    let sim = simulator(None).await;
    let ok = call(
        &sim,
        "room_engine_http_srv/get_room_info",
        json!({"RoomId": ROOM}),
    )
    .await;
    for field in ["ActionStatus", "ErrorCode", "ErrorInfo", "RequestId"] {
        assert!(ok.get(field).is_some(), "{field} in {ok}");
    }
    assert_eq!(ok["ActionStatus"], "OK");
    assert_eq!(ok["Response"]["RoomInfo"]["RoomType"], "Conference");
    assert_eq!(ok["Response"]["RoomInfo"]["RoomStatus"], "Running");

    let (status, empty) = call_raw(
        &sim,
        "room_engine_http_srv/get_room_info",
        "administrator",
        &sig(),
        "",
    )
    .await;
    assert_eq!((status, code(&empty)), (200, 60003));
    assert_eq!(empty["ActionStatus"], "FAIL");
    assert!(empty["RequestId"].as_str().is_some_and(|id| !id.is_empty()));
    let (_, list) = call_raw(
        &sim,
        "room_engine_http_srv/get_room_info",
        "administrator",
        &sig(),
        "[]",
    )
    .await;
    assert_eq!(code(&list), 60003);
    let missing = call(
        &sim,
        "room_engine_http_srv/get_room_info",
        json!({"RoomId": "nowhere"}),
    )
    .await;
    assert_eq!(code(&missing), 100004);

    let get = reqwest::get(
        sim.base_url()
            .join("v4/room_engine_http_srv/get_room_info")
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(get.status(), 405);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_admin_query_string_and_usersig_are_checked() {
    let sim = simulator(None).await;
    let path = "room_engine_http_srv/get_room_info";
    let body = json!({"RoomId": ROOM}).to_string();
    let (_, bad) = call_raw(&sim, path, "administrator", "not-a-sig", &body).await;
    assert_eq!(code(&bad), 70009);
    let wrong_key = auth::issue(
        APP,
        "administrator",
        &Secret::new("another key"),
        unix_now() as i64,
        3600,
    );
    let (_, forged) = call_raw(&sim, path, "administrator", wrong_key.expose(), &body).await;
    assert_eq!(code(&forged), 70009);
    let old = auth::issue(
        APP,
        "administrator",
        &Secret::new(DEMO_SECRET_KEY),
        unix_now() as i64 - 7200,
        3600,
    );
    let (status, expired) = call_raw(&sim, path, "administrator", old.expose(), &body).await;
    assert_eq!((status, code(&expired)), (200, 70001));
    let (_, not_admin) = call_raw(&sim, path, "bob", &sig(), &body).await;
    assert_eq!(code(&not_admin), 60010);
    let others = auth::issue(
        APP,
        "bob",
        &Secret::new(DEMO_SECRET_KEY),
        unix_now() as i64,
        3600,
    );
    let (_, someone_elses) = call_raw(&sim, path, "administrator", others.expose(), &body).await;
    assert_eq!(code(&someone_elses), 70013);
    sim.shutdown().await;
}

#[tokio::test]
async fn each_api_takes_200_calls_a_second() {
    let sim = simulator(None).await;
    let sig = sig();
    let calls = (0..450).map(|_| {
        call_raw(
            &sim,
            "room_engine_http_srv/get_room_info",
            "administrator",
            &sig,
            r#"{"RoomId":"room-a"}"#,
        )
    });
    let answers = futures_util::future::join_all(calls).await;
    let limited = answers
        .iter()
        .filter(|(_, answer)| code(answer) == 60007)
        .count();
    assert!(limited > 0, "450 calls at once meet the limit");
    assert!(answers.iter().all(|(status, _)| *status == 200));
    let other = call(
        &sim,
        "room_engine_http_srv/get_room_member_list",
        json!({"RoomId": ROOM}),
    )
    .await;
    assert_eq!(code(&other), 0, "each API has its own limit");
    sim.shutdown().await;
}

#[tokio::test]
async fn members_page_by_cursor_with_the_samples_owner_spelling() {
    let sim = simulator(None).await;
    for n in 0..7 {
        sim.step(ROOM, &Step::Join(Joiner::guest(format!("Guest {n}"))))
            .unwrap();
    }
    let mut next = String::new();
    let mut members = Vec::new();
    let mut pages = 0;
    loop {
        let page = call(
            &sim,
            "room_engine_http_srv/get_room_member_list",
            json!({"RoomId": ROOM, "Count": 4, "Next": next}),
        )
        .await;
        pages += 1;
        members.extend(page["Response"]["MemberList"].as_array().unwrap().clone());
        next = page["Response"]["Next"].as_str().unwrap().to_owned();
        if next.is_empty() {
            break;
        }
    }
    assert_eq!((pages, members.len()), (3, 9));
    assert_eq!(members[0]["Member_Account"], "ada");
    assert_eq!(members[0]["Role"], "RoomOwner");
    assert_eq!(members[1]["Role"], "Member");
    assert_eq!(members[1]["NameCard"], "Bob");
    sim.shutdown().await;
}

#[tokio::test]
async fn callbacks_carry_the_five_parameters_a_fresh_sign_and_the_samples_quirks() {
    let sim = simulator(Some("tok")).await;
    sim.step(
        ROOM,
        &Step::Join(Joiner {
            uri: Some("144115188075855873".into()),
            ..Joiner::guest("Wen")
        }),
    )
    .unwrap();
    call(
        &sim,
        "room_engine_http_srv/update_room_info",
        json!({"RoomInfo": {"RoomId": ROOM, "IsAudioDisabled": true}}),
    )
    .await;
    call(
        &sim,
        "room_engine_http_srv/kick_user_out",
        json!({"RoomId": ROOM, "MemberList_Account": ["bob"], "Reason": "spam"}),
    )
    .await;
    let sent = callbacks(&sim).await;
    let commands: Vec<&str> = sent
        .iter()
        .map(|(_, body)| body["CallbackCommand"].as_str().unwrap())
        .collect();
    assert_eq!(
        commands,
        [
            "Room.CallbackAfterMemberEnter",
            "Mic.CallbackAfterSeatInfoChanged",
            "Room.CallbackAfterUpdateRoomInfo",
            "Room.CallbackAfterMemberLeave",
            "Mic.CallbackAfterSeatInfoChanged",
        ]
    );
    for (query, body) in &sent {
        assert_eq!(param(query, "SdkAppid"), Some("1400000000"));
        assert_eq!(
            param(query, "CallbackCommand"),
            body["CallbackCommand"].as_str()
        );
        assert_eq!(param(query, "contenttype"), Some("json"));
        assert!(param(query, "ClientIP").is_some() && param(query, "OptPlatform").is_some());
        let time = param(query, "RequestTime").unwrap();
        assert_eq!(
            param(query, "Sign"),
            Some(auth::callback_sign(&Secret::new("tok"), time).as_str())
        );
        assert!(
            body["EventTime"].as_i64().unwrap() > 1_000_000_000_000,
            "milliseconds"
        );
    }
    let times: Vec<i64> = sent
        .iter()
        .map(|(_, body)| body["EventTime"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|pair| pair[0] < pair[1]), "{times:?}");
    // The seat sample's bare 18-digit number, exact in the JSON text.
    let seat = serde_json::to_string(&sent[1].1).unwrap();
    assert!(
        seat.contains(r#""Member_Account":144115188075855873"#),
        "{seat}"
    );
    assert_eq!(sent[2].1["RoomInfo"]["IsCloudRecordingDisabled"], "false");
    assert_eq!(sent[2].1["RoomInfo"]["IsAudioDisabled"], true);
    assert_eq!(sent[3].1["Type"], "Kicked");
    assert_eq!(sent[3].1["Reason"], "spam");
    assert_eq!(sent[3].1["MemberList_Account"][0], "bob");
    sim.shutdown().await;
}

#[tokio::test]
async fn rooms_are_created_scheduled_started_and_destroyed() {
    let sim = simulator(None).await;
    let start = unix_now() as i64 + 600;
    let created = call(
        &sim,
        "room_engine_http_srv/create_room",
        json!({"RoomInfo": {
            "RoomId": "lec-9",
            "RoomName": "Lecture 9",
            "Owner_Account": "prof",
            "ScheduleStartTime": start,
            "ScheduleEndTime": start + 3600,
        }}),
    )
    .await;
    assert_eq!(code(&created), 0);
    let info = call(
        &sim,
        "room_engine_http_srv/get_room_info",
        json!({"RoomId": "lec-9"}),
    )
    .await;
    assert_eq!(info["Response"]["RoomInfo"]["RoomStatus"], "NotStarted");
    sim.step(
        "lec-9",
        &Step::Join(Joiner {
            uri: Some("prof".into()),
            ..Joiner::host("Prof")
        }),
    )
    .unwrap();
    let info = call(
        &sim,
        "room_engine_http_srv/get_room_info",
        json!({"RoomId": "lec-9"}),
    )
    .await;
    assert_eq!(info["Response"]["RoomInfo"]["RoomStatus"], "Running");
    let destroyed = call(
        &sim,
        "room_engine_http_srv/destroy_room",
        json!({"RoomId": "lec-9"}),
    )
    .await;
    assert_eq!(code(&destroyed), 0);
    let gone = call(
        &sim,
        "room_engine_http_srv/get_room_info",
        json!({"RoomId": "lec-9"}),
    )
    .await;
    assert_eq!(code(&gone), 100004);

    let sent = callbacks(&sim).await;
    let (_, create) = &sent[0];
    assert_eq!(create["CallbackCommand"], "Room.CallbackAfterCreateRoom");
    assert_eq!(
        create["RoomInfo"]["RoomType"], "Meeting",
        "the create sample's room type"
    );
    assert_eq!(create["RoomInfo"]["ScheduleStartTime"], start, "seconds");
    assert_eq!(create["RoomInfo"]["RoomStatus"], "NotStarted");
    let names: Vec<&str> = sent
        .iter()
        .map(|(_, body)| body["CallbackCommand"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Room.CallbackAfterCreateRoom",
            "Room.CallbackAfterMemberEnter",
            "Room.CallbackAfterUpdateRoomInfo",
            "Room.CallbackAfterDestroyRoom",
        ]
    );
    assert_eq!(sent[2].1["RoomInfo"]["RoomStatus"], "Running");
    sim.shutdown().await;
}

#[tokio::test]
async fn bans_expire_and_seats_lock() {
    let sim = simulator(None).await;
    let ban = call(
        &sim,
        "room_engine_http_srv/ban_room_member",
        json!({"RoomId": ROOM, "MemberList_Account": ["bob"], "Reason": "r", "Duration": 1}),
    )
    .await;
    assert_eq!(code(&ban), 0);
    let banned = call(
        &sim,
        "room_engine_http_srv/get_banned_member_list",
        json!({"RoomId": ROOM}),
    )
    .await;
    assert_eq!(
        banned["Response"]["BannedMemberList"][0]["Member_Account"],
        "bob"
    );
    assert!(sim.step(ROOM, &Step::Join(Joiner::guest("Bob"))).is_err());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    sim.step(ROOM, &Step::Join(Joiner::guest("Bob"))).unwrap();

    let lock = call(
        &sim,
        "room_engine_http_mic/lock_seat",
        json!({"RoomId": ROOM, "Index": 0, "ForbidAudio": true}),
    )
    .await;
    assert_eq!(code(&lock), 0);
    assert_eq!(
        sim.seats(ROOM)[0],
        (Some("ada".to_owned()), true),
        "other flags kept"
    );
    let taken = call(
        &sim,
        "room_engine_http_mic/lock_seat",
        json!({"RoomId": ROOM, "Index": 0, "ForbidTaken": true}),
    )
    .await;
    assert_eq!(code(&taken), 0);
    assert_eq!(
        sim.seats(ROOM)[0].0,
        None,
        "locking the seat removes whoever sat there"
    );
    let no_seat = call(
        &sim,
        "room_engine_http_mic/lock_seat",
        json!({"RoomId": ROOM, "Index": 9, "ForbidAudio": true}),
    )
    .await;
    assert_eq!(code(&no_seat), 100002);
    sim.shutdown().await;
}
