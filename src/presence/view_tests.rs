use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use super::*;

const GRACE: Duration = Duration::from_secs(5);

fn key(tenant: &str, user: &str) -> Key {
    Key { tenant: tenant.into(), user: user.into() }
}

fn entry(connections: u32) -> Entry {
    Entry { username: Some("Name".into()), connections }
}

fn node(n: u128) -> NodeId {
    Uuid::from_u128(n)
}

fn ids(users: &[(String, Option<String>)]) -> Vec<&str> {
    users.iter().map(|(id, _)| id.as_str()).collect()
}

#[test]
fn a_first_socket_joins_and_a_last_one_leaves_after_the_grace() {
    let (mut view, t0) = (View::default(), Instant::now());
    view.set(node(1), key("acme", "u1"), entry(1), t0);
    view.set(node(2), key("acme", "u1"), entry(2), t0);
    let diffs = view.diffs(t0, GRACE);
    assert_eq!(diffs.len(), 1);
    assert_eq!((ids(&diffs[0].joins), diffs[0].online), (vec!["u1"], 1));
    assert_eq!(view.online("acme"), vec![("u1".to_owned(), Some("Name".to_owned()), 3)]);

    view.set(node(1), key("acme", "u1"), entry(0), t0);
    assert!(view.diffs(t0, GRACE).is_empty(), "one socket left: still online");
    view.set(node(2), key("acme", "u1"), entry(0), t0);
    assert_eq!(view.online("acme"), vec![("u1".to_owned(), Some("Name".to_owned()), 0)], "listed, with no socket");
    assert!(view.diffs(t0 + GRACE / 2, GRACE).is_empty(), "within the grace nobody leaves");
    let diffs = view.diffs(t0 + GRACE, GRACE);
    assert_eq!((ids(&diffs[0].leaves), diffs[0].online), (vec!["u1"], 0));
    assert!(view.online("acme").is_empty());
    assert!(view.diffs(t0 + GRACE * 2, GRACE).is_empty(), "a leave is said once");
}

#[test]
fn back_within_the_grace_on_another_node_is_no_change() {
    let (mut view, t0) = (View::default(), Instant::now());
    view.set(node(1), key("acme", "u1"), entry(1), t0);
    view.diffs(t0, GRACE);
    view.drop_node(node(1), t0);
    view.set(node(2), key("acme", "u1"), entry(1), t0 + GRACE / 2);
    assert!(view.diffs(t0 + GRACE * 3, GRACE).is_empty());
}

#[test]
fn a_visit_shorter_than_a_diff_is_never_announced_online_and_leaves_after_the_grace() {
    let (mut view, t0) = (View::default(), Instant::now());
    view.set(node(1), key("acme", "u1"), entry(1), t0);
    assert_eq!(view.online("acme").len(), 1, "listed at once");
    view.set(node(1), key("acme", "u1"), entry(0), t0);
    assert!(view.diffs(t0, GRACE).is_empty());
    assert!(view.online("acme").is_empty());
    let diffs = view.diffs(t0 + GRACE, GRACE);
    assert_eq!((ids(&diffs[0].joins), ids(&diffs[0].leaves), diffs[0].online), (vec![], vec!["u1"], 0));
}

#[test]
fn tenants_are_apart() {
    let (mut view, t0) = (View::default(), Instant::now());
    view.set(node(1), key("a", "u1"), entry(1), t0);
    view.set(node(1), key("b", "u1"), entry(1), t0);
    view.set(node(1), key("b", "u2"), entry(1), t0);
    let mut diffs = view.diffs(t0, GRACE);
    diffs.sort_by(|x, y| x.tenant.cmp(&y.tenant));
    assert_eq!(diffs.iter().map(|d| (d.tenant.as_str(), d.online)).collect::<Vec<_>>(), vec![("a", 1), ("b", 2)]);
    assert_eq!(view.online("a").len(), 1);
    assert!(view.online("c").is_empty());
}

/// One node's published updates: `(seq, key, entry)`, absolute counts.
type Log = Vec<(u64, Key, Entry)>;

/// Random joins and leaves of a few users in two tenants on `nodes` nodes:
/// every node's update log and the true final counts per user.
fn history(rng: &mut StdRng, nodes: u128) -> (BTreeMap<NodeId, Log>, BTreeMap<Key, u32>) {
    let mut logs: BTreeMap<NodeId, Log> = BTreeMap::new();
    let mut counts: BTreeMap<(NodeId, Key), u32> = BTreeMap::new();
    for seq in 1..=rng.random_range(1..60) {
        let n = node(rng.random_range(1..=nodes));
        let k = key(["t1", "t2"][rng.random_range(0..2)], ["u1", "u2", "u3", "u4"][rng.random_range(0..4)]);
        let count = counts.entry((n, k.clone())).or_default();
        *count = if *count > 0 && rng.random_bool(0.5) { *count - 1 } else { *count + 1 };
        logs.entry(n).or_default().push((seq, k, entry(*count)));
    }
    let mut truth = BTreeMap::new();
    for ((_, k), c) in counts {
        *truth.entry(k).or_default() += c;
    }
    truth.retain(|_, c| *c > 0);
    (logs, truth)
}

/// Delivers the logs to a view in a random interleaving of the nodes,
/// with repeats and full copies at random points, as a node that reads
/// twice, reloads or restarts its reads sees them. A node's updates arrive
/// in its order (each read returns the newest rows), never older than one
/// already applied. The clock moves on by up to a third of the grace at
/// each step; returns its time at the end.
fn deliver(rng: &mut StdRng, logs: &BTreeMap<NodeId, Log>, view: &mut View, t0: Instant, said: &mut Said) -> Instant {
    let mut t = t0;
    // Each node's updates before this index are applied.
    let mut next: BTreeMap<NodeId, usize> = logs.keys().map(|n| (*n, 0)).collect();
    loop {
        let open: Vec<NodeId> = next.iter().filter(|(n, i)| **i < logs[*n].len()).map(|(n, _)| *n).collect();
        if open.is_empty() {
            return t;
        }
        t += GRACE.mul_f64(rng.random_range(0.0..0.34));
        let n = open[rng.random_range(0..open.len())];
        let (log, i) = (&logs[&n], next[&n]);
        // The node's newest entry for each key, as of update `upto`.
        let as_of = |upto: usize| {
            let mut copy = HashMap::new();
            for (_, k, e) in &log[..=upto] {
                copy.insert(k.clone(), e.clone());
            }
            copy
        };
        match rng.random_range(0..10) {
            0 => {
                let mut copy = as_of(i);
                copy.retain(|_, e| e.connections > 0);
                view.replace(n, copy, t);
            }
            1 if i > 0 => {
                let (_, k, _) = &log[rng.random_range(0..i)];
                let again = as_of(i - 1).remove(k).expect("the key was written");
                view.set(n, k.clone(), again, t);
                continue;
            }
            _ => {
                let (_, k, e) = &log[i];
                view.set(n, k.clone(), e.clone(), t);
            }
        }
        *next.get_mut(&n).expect("an open node") += 1;
        match rng.random_range(0..8) {
            0 => said.hear(view.diffs(t, GRACE)),
            1 => said.list(view, ["t1", "t2"][rng.random_range(0..2)]),
            _ => {}
        }
    }
}

/// What the sockets were told: the last `online` each tenant's diffs said,
/// and the users held by clients that listed a tenant at some point and
/// applied every diff after it.
#[derive(Default)]
struct Said {
    online: BTreeMap<String, usize>,
    clients: Vec<(&'static str, BTreeSet<String>)>,
}

impl Said {
    fn hear(&mut self, diffs: Vec<Diff>) {
        for diff in diffs {
            for (_, users) in self.clients.iter_mut().filter(|(t, _)| *t == diff.tenant) {
                users.extend(diff.joins.iter().map(|(id, _)| id.clone()));
                diff.leaves.iter().for_each(|(id, _)| _ = users.remove(id));
            }
            self.online.insert(diff.tenant, diff.online);
        }
    }

    /// A client lists `tenant` now.
    fn list(&mut self, view: &View, tenant: &'static str) {
        self.clients.push((tenant, view.online(tenant).into_iter().map(|(id, _, _)| id).collect()));
    }
}

fn listed(view: &View) -> BTreeMap<Key, u32> {
    let mut all = BTreeMap::new();
    for tenant in ["t1", "t2"] {
        for (user, _, connections) in view.online(tenant) {
            all.insert(key(tenant, &user), connections);
        }
    }
    all
}

/// Whatever order the updates of three nodes reach two observers in,
/// repeated or with full copies between them, both end with the same view:
/// once the grace has passed, the true counts and the same users announced;
/// and a client that listed at any point and applied every diff after it
/// holds exactly the list, neither a user gone nor one missing.
#[test]
fn any_interleaving_converges_to_the_same_view() {
    for seed in 0..500 {
        let mut rng = StdRng::seed_from_u64(seed);
        let (logs, truth) = history(&mut rng, 3);
        let t0 = Instant::now();
        for _observer in 0..2 {
            let (mut view, mut said) = (View::default(), Said::default());
            let end = deliver(&mut rng, &logs, &mut view, t0, &mut said);
            said.hear(view.diffs(end + GRACE, GRACE));
            assert_eq!(listed(&view), truth, "seed {seed}");
            assert_eq!(view.diffs(end + GRACE * 2, GRACE), vec![], "seed {seed}: nothing left to say");
            for tenant in ["t1", "t2"] {
                let expected = truth.keys().filter(|k| k.tenant == tenant).count();
                assert_eq!(said.online.get(tenant).copied().unwrap_or(0), expected, "seed {seed}, {tenant}: {truth:?}");
            }
            for (tenant, users) in &said.clients {
                let now: BTreeSet<String> = view.online(tenant).into_iter().map(|(id, _, _)| id).collect();
                assert_eq!(users, &now, "seed {seed}: a client of {tenant} that listed, then applied the diffs");
            }
        }
    }
}

/// A node dropped (stopped, or expired) takes its entries with it, however
/// its updates came in; the other nodes' entries stay.
#[test]
fn dropping_a_node_leaves_the_others() {
    for seed in 0..200 {
        let mut rng = StdRng::seed_from_u64(seed);
        let (logs, _) = history(&mut rng, 2);
        let mut view = View::default();
        let t0 = Instant::now();
        let end = deliver(&mut rng, &logs, &mut view, t0, &mut Said::default());
        view.drop_node(node(1), end);
        view.diffs(end + GRACE, GRACE);
        let mut expected: BTreeMap<Key, u32> = BTreeMap::new();
        for (k, e) in view.entries(node(2)) {
            expected.insert(k.clone(), e.connections);
        }
        assert_eq!(listed(&view), expected, "seed {seed}");
        assert!(view.entries(node(1)).is_empty());
    }
}
