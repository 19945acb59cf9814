"""Tools to test heicconv and its backends: generated fixtures and the conformance suite.

A third-party backend proves itself by subclassing :class:`heicconv.testing.conformance.ConformanceSuite`
and overriding one fixture, ``backend_name``.
"""
