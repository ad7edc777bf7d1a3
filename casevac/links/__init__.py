"""Field links: the 9-line where there is little or no data link (issue 16).

- `text`, `text_encode`, `text_codes`: the radio-format text 9-line (SMS, chat, voice relay): a lenient parser,
  an encoder, and the codes and spellings they share;
- `sbd`: a compact binary 9-line for Iridium short-burst data (RockBLOCK-class devices);
- the gateways that carry them (SMS, satellite) and their endpoints are in the modules beside these;
- `outbound`: the texts pushed back to the medic on status moves (Twilio, RockBLOCK, SMSSync's pull).
"""

from flask import Flask


def init_app(app: Flask) -> None:
    """Wire the field links into an app: the gateways and intake blueprint (with its security scheme), the
    small-answer hooks on the CASEVAC endpoints, the texts pushed back on status moves (a status hook and the
    sweeper task that sends them), the device tokens' sweeper task."""
    from casevac.links import answers, corrections, models, outbound, views  # noqa: F401 - models: for Alembic
    from casevac.requests import lifecycle
    from casevac.requests import service as requests_service
    from config.extensions import api
    from core import device_tokens
    from realtime import sweeper

    views.register(api)
    answers.init_app(app)
    answers.document(api)
    if corrections.tell_asset not in requests_service.CORRECTION_HOOKS:
        requests_service.CORRECTION_HOOKS.append(corrections.tell_asset)
    lifecycle.add_status_hook(outbound.queue_status_text)
    sweeper.register("casevac.links.outbound", outbound.deliver_task)
    # Field devices' short tokens (core.device_tokens, issued at login) expire; the sweeper drops old ones.
    sweeper.register("core.device_tokens.purge", device_tokens.purge_expired)
