-- The HTTP request's id (x-request-id: the client's, or a generated one) beside the response's
-- id (request_id, as LiteLLM's spend log has it).
ALTER TABLE spend ADD COLUMN x_request_id TEXT;
