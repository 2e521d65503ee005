"""iot-defender-splunk's operator toolkit: the fleet simulator and the ``iot-defender-splunk`` CLI.

The Lambda packages (transform, collect, respond, provision, shared) are what AWS runs; this
package is what an operator runs beside them.
"""
