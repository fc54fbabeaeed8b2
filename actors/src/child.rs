//! One child process (placeholder; being written).
