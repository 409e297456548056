//! Which live node owns which room: rendezvous hashing with bounded load.
//!
//! Every instance computes the same answer from the same inputs (the
//! config's rooms and the live nodes in etcd), so no instance has to hand
//! rooms out. Each room ranks the nodes by a hash of (node, room), as in
//! plain rendezvous hashing, so most rooms keep their owner when a node
//! joins or leaves; but each node takes only its share (the room count
//! divided by the node count, the first nodes by name one more), so the
//! spread is even to within one room. Rooms are placed in the order of
//! their own hash, each with the best-ranked node that has room left.

use std::collections::BTreeMap;

/// FNV-1a, 64 bits: stable across builds and platforms, unlike std's
/// hasher, so every instance ranks alike.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    // FNV's low bits mix poorly; a final avalanche (from SplitMix64).
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// Each room's owner among `nodes`; empty when there are no nodes.
pub fn assign<'a>(rooms: &[&'a str], nodes: &[&str]) -> BTreeMap<&'a str, String> {
    let mut nodes: Vec<&str> = nodes.to_vec();
    nodes.sort_unstable();
    nodes.dedup();
    if nodes.is_empty() {
        return BTreeMap::new();
    }
    let (share, extra) = (rooms.len() / nodes.len(), rooms.len() % nodes.len());
    let mut room_left: Vec<usize> = (0..nodes.len())
        .map(|index| share + usize::from(index < extra))
        .collect();
    let mut order: Vec<&str> = rooms.to_vec();
    order.sort_by_key(|room| (fnv1a(&[room]), *room));
    let mut owners = BTreeMap::new();
    for room in order {
        let mut ranked: Vec<usize> = (0..nodes.len()).collect();
        ranked.sort_by_key(|&index| std::cmp::Reverse(fnv1a(&[nodes[index], room])));
        if let Some(&chosen) = ranked.iter().find(|&&index| room_left[index] > 0) {
            room_left[chosen] -= 1;
            owners.insert(room, nodes[chosen].to_owned());
        }
    }
    owners
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rooms(count: usize) -> Vec<String> {
        (0..count)
            .map(|n| format!("room-{n}@campus.test"))
            .collect()
    }

    fn counts(owners: &BTreeMap<&str, String>) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for node in owners.values() {
            *counts.entry(node.clone()).or_default() += 1;
        }
        counts
    }

    #[test]
    fn rooms_spread_within_one_of_each_other() {
        for (room_count, node_count) in [(30, 3), (31, 3), (7, 4), (100, 7), (2, 5), (0, 2)] {
            let names = rooms(room_count);
            let rooms: Vec<&str> = names.iter().map(String::as_str).collect();
            let node_names: Vec<String> = (0..node_count).map(|n| format!("node-{n}")).collect();
            let nodes: Vec<&str> = node_names.iter().map(String::as_str).collect();
            let owners = assign(&rooms, &nodes);
            assert_eq!(owners.len(), room_count, "every room has an owner");
            let counts = counts(&owners);
            let most = counts.values().max().copied().unwrap_or(0);
            let least = if counts.len() < node_count {
                0
            } else {
                counts.values().min().copied().unwrap_or(0)
            };
            assert!(
                most - least <= 1,
                "{room_count} rooms on {node_count} nodes: {counts:?}"
            );
        }
    }

    #[test]
    fn every_instance_agrees_whatever_order_it_lists_in() {
        let names = rooms(30);
        let rooms: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut reversed = rooms.clone();
        reversed.reverse();
        assert_eq!(
            assign(&rooms, &["a", "b", "c"]),
            assign(&reversed, &["c", "a", "b", "a"])
        );
    }

    #[test]
    fn a_node_leaving_moves_mostly_its_own_rooms() {
        let names = rooms(30);
        let rooms: Vec<&str> = names.iter().map(String::as_str).collect();
        let before = assign(&rooms, &["a", "b", "c"]);
        let after = assign(&rooms, &["a", "b"]);
        let moved_from_survivors = before
            .iter()
            .filter(|(room, owner)| *owner != "c" && after[*room] != **owner)
            .count();
        assert!(
            moved_from_survivors <= 6,
            "{moved_from_survivors} of the survivors' 20 rooms moved"
        );
        assert!(after.values().all(|owner| owner != "c"));
        assert!(assign(&rooms, &[]).is_empty());
    }
}
