//! The worker actor (placeholder; being written).
