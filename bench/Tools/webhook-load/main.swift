// Step-0 stub (WP-G replaces it): the webhook load generator of bench/webhooks.sh.
import CallTelnyx

print("callrec-webhook-load: not implemented yet")
