//! A callback flood: 10,000 Agora callbacks over 100 rooms, 5% of them
//! sent twice and 5% out of order, through the real webhook listener and
//! adapter into room states. No change may be lost or applied twice, and
//! every room must end exactly as the platform has it.

use usher::bench::webhooks::flood;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_callbacks_with_duplicates_and_reordering_lose_nothing_and_repeat_nothing() {
    let flood = flood(100, 10_000, true).await.expect("the flood runs");
    assert_eq!((flood.rooms, flood.callbacks), (100, 10_000));
    assert_eq!((flood.duplicated, flood.reordered), (500, 500));
    for room in &flood.outcomes {
        assert_eq!(room.seen, room.expected, "{}: every change once", room.room);
        assert_eq!(
            room.roster, room.platform_roster,
            "{}: usher's roster is the platform's",
            room.room
        );
    }
    let people: usize = flood.outcomes.iter().map(|room| room.roster.len()).sum();
    assert!(people > 2_000, "the rooms end full: {people}");
    assert_eq!(
        (
            flood.lost(),
            flood.applied_twice(),
            flood.rosters_differing()
        ),
        (0, 0, 0)
    );
}
