"""The live web dashboard of the local stack (``plantwatch up``, ``demo``, ``dashboard``).

- :mod:`queries`: the read side over a data directory (read-only, creates nothing)
- :mod:`analysis`: ribbons, events, importance, from result rows
- :mod:`model_health`: anomaly rate per day and input drift per sensor
- :mod:`api`: the ``/api/v1/`` JSON documents
- :mod:`charts`: server-side SVG
- :mod:`app`: the Starlette routes, pages and safety checks
- :mod:`actions`: acknowledge and snooze through the alarm engine
- :mod:`server`: uvicorn in a thread, a component of the stack
"""
