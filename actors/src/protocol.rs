//! The CLI's stream-json protocol (placeholder; being written).
