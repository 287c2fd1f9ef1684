"""Migration from the retired AWS services: L4E buckets (:mod:`cloud.migrate.l4e`) and IoT
Events definitions (:mod:`cloud.migrate.iotevents`), read from sources that stay untouched
(:mod:`cloud.migrate.source`)."""
