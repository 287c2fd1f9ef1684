"""Device health from the status documents edge agents publish (``edge.wire.DeviceStatus``)."""
