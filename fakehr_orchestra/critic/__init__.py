"""The critic as a service: readiness probe (`probe.py`) and its command line (`python -m fakehr_orchestra.critic`).

The server's plan is rendered by `engines/critic.py`; the pipeline starts it around the GRPO stage
(`pipeline/services.py`) through `launch/service.Service`.
"""
