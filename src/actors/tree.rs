//! The supervision tree of the background actors: the fraud monitor, the circuit breaker, the rate limiter, the
//! deadline queue, the mailer, the event sender, the reconciler, the pause watcher and the inbox sweep run linked to
//! one root, which restarts any of them that crashes or is killed; each reads its state back from the database as it
//! starts (fraud windows from the purchases, pauses, the outbox, the reconcile schedule). A restart that fails (the
//! database unreachable as the actor reads its state back) is tried again, less and less often, for as long as the
//! service runs: a node never carries on without one of its guards or timers. The rest of the service reaches them
//! by name through `Named`, so it finds the restarted one. (Purchase and refund actors have their own supervisor,
//! `actors::supervisor`.)
use ractor::rpc::CallResult;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr, SupervisionEvent};
use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A supervised actor found by its registered name, wherever its latest incarnation is.
pub struct Named<M> {
    name: String,
    _message: PhantomData<fn(M)>,
}

impl<M> Clone for Named<M> {
    fn clone(&self) -> Self {
        Self { name: self.name.clone(), _message: PhantomData }
    }
}

impl<M: ractor::Message> Named<M> {
    pub fn name(&self) -> &str {
        &self.name
    }

    fn running(&self) -> Option<ActorRef<M>> {
        ActorRef::where_is(self.name.clone())
    }

    /// Sends without waiting. While the actor is between a crash and its restart the message is dropped: these are
    /// signals (an outcome, a decline) whose loss a restarted guard makes up for by reading the database.
    pub fn cast(&self, message: M) {
        match self.running() {
            Some(actor) => {
                let _ = actor.cast(message);
            }
            None => tracing::warn!(actor = %self.name, "actor restarting: a signal to it was dropped"),
        }
    }

    /// Asks and waits up to `timeout`; `None` when the actor is down or does not answer in time.
    pub async fn call<R: Send + 'static>(
        &self,
        message: impl FnOnce(RpcReplyPort<R>) -> M,
        timeout: Duration,
    ) -> Option<R> {
        match self.running()?.call(message, Some(timeout)).await {
            Ok(CallResult::Success(answer)) => Some(answer),
            _ => None,
        }
    }
}

type Spawn = Arc<dyn Fn(ActorCell) -> Pin<Box<dyn Future<Output = Result<(), SpawnErr>> + Send>> + Send + Sync>;

/// The root of one service's background actors, with the names it gives them (unique per process: tests run several
/// services in one).
pub struct Tree {
    root: ActorRef<TreeMsg>,
    prefix: String,
    adopted: Adopted,
}

/// The names of the children a tree has adopted, shared with whoever asks which of them are down (`/readyz`).
#[derive(Clone, Default)]
pub struct Adopted(Arc<std::sync::Mutex<Vec<String>>>);

impl Adopted {
    /// The registered name of the child adopted as `role`, if there is one.
    pub fn name_of(&self, role: &str) -> Option<String> {
        let names = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        names.iter().find(|name| role_of(name) == role).cloned()
    }

    /// The roles of the children not running at this moment: crashed and not yet back, or refused their restart.
    pub fn down(&self) -> Vec<String> {
        let names = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        names.iter().filter(|name| !is_running(name)).map(|name| role_of(name).to_owned()).collect()
    }
}

/// The role a child's registered name (`<prefix>:<role>`) was adopted as.
fn role_of(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, role)| role)
}

fn is_running(name: &str) -> bool {
    ractor::registry::where_is(name)
        .is_some_and(|cell| matches!(cell.get_status(), ractor::ActorStatus::Starting | ractor::ActorStatus::Running))
}

pub enum TreeMsg {
    /// Start a child and restart it whenever it stops, until the service stops.
    Adopt { name: String, spawn: Spawn, reply: RpcReplyPort<Result<(), String>> },
    /// The service is stopping: children that stop now are not restarted.
    Stopping(RpcReplyPort<()>),
    /// Start again the child `name`, whose last restart failed; the `attempt`-th try.
    Restart { name: String, attempt: u32 },
}

/// The wait before a failed restart's `attempt`-th retry: doubling from 10 ms, then every 5 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(10u64.saturating_mul(1 << attempt.min(16))).min(Duration::from_secs(5))
}

struct Root;

#[derive(Default)]
pub struct RootState {
    children: HashMap<String, Spawn>,
    stopping: bool,
}

impl Actor for Root {
    type Msg = TreeMsg;
    type State = RootState;
    type Arguments = ();

    async fn pre_start(&self, _myself: ActorRef<TreeMsg>, _: ()) -> Result<RootState, ActorProcessingErr> {
        Ok(RootState::default())
    }

    async fn handle(
        &self,
        myself: ActorRef<TreeMsg>,
        msg: TreeMsg,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            TreeMsg::Adopt { name, spawn, reply } => {
                let started = spawn(myself.get_cell()).await.map_err(|e| format!("{name}: {e}"));
                if started.is_ok() {
                    state.children.insert(name, spawn);
                }
                let _ = reply.send(started);
            }
            TreeMsg::Stopping(reply) => {
                state.stopping = true;
                let _ = reply.send(());
            }
            TreeMsg::Restart { name, attempt } => restart(&myself, state, name, attempt).await,
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<TreeMsg>,
        event: SupervisionEvent,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match event {
            SupervisionEvent::ActorFailed(cell, error) => (cell, error.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => (cell, reason.unwrap_or_else(|| "stopped".into())),
            _ => return Ok(()),
        };
        let Some(name) = cell.get_name() else { return Ok(()) };
        if !state.stopping && state.children.contains_key(&name) {
            tracing::error!(actor = %name, %why, "background actor stopped; restarting it");
            restart(&myself, state, name, 0).await;
        }
        Ok(())
    }
}

/// Starts the child `name` again unless the service is stopping; a try that fails is made again after `backoff`, by a
/// message to the root, which goes on supervising the other children meanwhile. The first tries also cover the
/// moment the registry still holds the stopped actor's name.
async fn restart(root: &ActorRef<TreeMsg>, state: &RootState, name: String, attempt: u32) {
    let Some(spawn) = state.children.get(&name).filter(|_| !state.stopping) else { return };
    if is_running(&name) {
        return;
    }
    if let Err(e) = spawn(root.get_cell()).await {
        let wait = backoff(attempt);
        tracing::warn!(actor = %name, error = %e, attempt, ?wait, "restart failed; trying again");
        root.send_after(wait, move || TreeMsg::Restart { name, attempt: attempt + 1 });
    }
}

impl Tree {
    pub async fn start() -> Result<Self, String> {
        let prefix = format!("svc-{}", uuid::Uuid::new_v4().simple());
        let (root, _) = Actor::spawn(Some(format!("{prefix}:root")), Root, ())
            .await
            .map_err(|e| format!("supervision tree: {e}"))?;
        Ok(Self { root, prefix, adopted: Adopted::default() })
    }

    /// Starts `actor` under the root as `role`; it is started again, from a clone of this value, whenever it stops.
    pub async fn child<A>(&self, role: &str, actor: A) -> Result<Named<A::Msg>, String>
    where
        A: Actor<Arguments = ()> + Clone,
    {
        let name = self.name_of(role);
        let registered = name.clone();
        let spawn: Spawn = Arc::new(move |root| {
            let (actor, name) = (actor.clone(), registered.clone());
            Box::pin(async move { Actor::spawn_linked(Some(name), actor, (), root).await.map(|_| ()) })
        });
        let adopt = |reply| TreeMsg::Adopt { name: name.clone(), spawn, reply };
        match self.root.call(adopt, Some(Duration::from_secs(30))).await {
            Ok(CallResult::Success(Ok(()))) => {
                self.adopted.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(name);
                Ok(self.named(role))
            }
            Ok(CallResult::Success(Err(e))) => Err(e),
            _ => Err(format!("{name}: the supervision tree did not answer")),
        }
    }

    /// The handle of the child started (or yet to be started) as `role`: for actors that others must know before
    /// it can start.
    pub fn named<M>(&self, role: &str) -> Named<M> {
        Named { name: self.name_of(role), _message: PhantomData }
    }

    /// The registered name of the child started as `role`.
    pub fn name_of(&self, role: &str) -> String {
        format!("{}:{role}", self.prefix)
    }

    /// The children adopted so far and from now on, to ask which are down.
    pub fn adopted(&self) -> Adopted {
        self.adopted.clone()
    }

    /// What this service's background actors' names start with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub async fn shutdown(&self) {
        let _ = self.root.call(TreeMsg::Stopping, Some(Duration::from_secs(5))).await;
        self.root.stop_children_and_wait(None, Some(Duration::from_secs(5))).await;
        self.root.stop(None);
    }
}

/// Kills the actor registered as `name`, as a crash would: it stops mid-work, and whatever supervises it brings it
/// back from the database. For the tests and the chaos harness.
pub fn crash(name: &str) -> bool {
    match ractor::registry::where_is(name) {
        Some(cell) => {
            cell.kill();
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Instant;

    /// An actor that refuses to start until `until`, as one whose database is out of reach for a while.
    #[derive(Clone)]
    struct Unready {
        until: Arc<Mutex<Option<Instant>>>,
    }

    impl Actor for Unready {
        type Msg = ();
        type State = ();
        type Arguments = ();

        async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
            match *self.until.lock().unwrap() {
                Some(until) if Instant::now() < until => Err("the database is out of reach".into()),
                _ => Ok(()),
            }
        }
    }

    #[tokio::test]
    async fn a_restart_refused_for_a_while_is_tried_until_it_succeeds() {
        let tree = Tree::start().await.unwrap();
        let until = Arc::new(Mutex::new(None));
        tree.child("unready", Unready { until: until.clone() }).await.unwrap();
        // Refused for longer than the twenty quick tries the tree once made before it gave up (about two seconds).
        *until.lock().unwrap() = Some(Instant::now() + Duration::from_secs(3));
        let (name, adopted) = (tree.name_of("unready"), tree.adopted());
        assert!(adopted.down().is_empty());
        assert!(crash(&name));
        let (refused_until, deadline) =
            (Instant::now() + Duration::from_secs(3), Instant::now() + Duration::from_secs(20));
        let mut seen_down = false;
        // Running after the refusals is running again: the crashed incarnation is long gone by then.
        while Instant::now() < refused_until || !adopted.down().is_empty() {
            seen_down |= adopted.down() == ["unready"];
            assert!(Instant::now() < deadline, "the actor was never restarted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(seen_down, "while its restarts were refused, it was listed down");
        tree.shutdown().await;
    }
}
