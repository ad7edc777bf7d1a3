"""Field links: the 9-line where there is little or no data link (issue 16).

- `text`: the radio-format text 9-line (SMS, chat, voice relay), a lenient parser and an encoder;
- `sbd`: a compact binary 9-line for Iridium short-burst data (RockBLOCK-class devices);
- the gateways that carry them (SMS, satellite) and their endpoints are in the modules beside these.
"""
