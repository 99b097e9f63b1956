// Step-0 stub (WP-C replaces it): `worker --listen HOST:PORT` serves POST /webhooks/telnyx,
// GET /healthz and GET /metrics (Hummingbird), storing verified events through
// CallPipeline's TelnyxIntake in batches (one commit for the events that arrive together).
