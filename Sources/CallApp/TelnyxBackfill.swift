// Step-0 stub (WP-F replaces it): `callrec telnyx backfill --since DATE [--until DATE] [--apply]`.
