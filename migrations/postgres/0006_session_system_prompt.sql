-- A conversation's system prompt, so a replica that takes the conversation up runs it with the
-- same prompt when its turns send only their new message.
ALTER TABLE sessions ADD COLUMN system_prompt TEXT;
