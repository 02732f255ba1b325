//! Background work of a node: firing due timers and clearing expired sessions. Every node
//! runs it; the store makes each timer fire once.

use std::time::Duration;

use crate::AppState;

pub async fn run(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        ticks += 1;
        if let Err(error) = state.store.fire_due_timers().await {
            tracing::warn!(%error, "firing timers failed; retrying next tick");
        }
        if ticks.is_multiple_of(600)
            && let Err(error) = state.store.delete_expired_sessions(state.clock.now()).await
        {
            tracing::warn!(%error, "clearing expired sessions failed");
        }
    }
}
