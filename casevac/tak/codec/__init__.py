"""Cursor-on-Target <-> 9-line, pure: no I/O, no database, no clock (times are arguments).

`stream`: `StreamSplitter` cuts a TAK stream (events back to back, XML declarations between them) into
events, `parse()` reads one with a hardened parser (defusedxml: no DTD, no entities, no external
references). `reading`: `classify()` says what an event is and `nine_line()` turns a MEDEVAC event into the
body the API's `RequestIn` schema validates, with every default it had to apply listed in `notes`.
`writing`: `medevac()` (the marker of a request), `delete()` (t-x-d-d), `chat()` (GeoChat b-t-f to one
contact), `asset()`, `facility()` and `presence()` (the gateway's own SA, so the TAK server routes direct
messages to it). `mist`: a casualty's MIST card (`<zMist>`) both ways. `vocabulary`: event types, ATAK's
codes for the 9-line and what both directions share.

Attribute names are those of ATAK-CIV's MedicalDetailHandler.java (what ATAK writes and reads), plus the
other spellings in circulation: OpenTAKServer's CasEvac model (`terrain_detail`, `urgent_surgical`,
`convenience`, `freq` as a float, `<zMist>` directly under `<_medevac_>`), `non_us_*`, letters or words
instead of ATAK's indices for lines 6 and 7, and a single `precedence`. What ATAK has no field for (line 2
suffix, line 6 wounds, line 9 CBRN, the exact UN line-8 categories, a casualty's age, sex, time of injury,
precedence and treatment times) rides in our own `<__medevac_un>` element and `un` attribute of `<zMist>`,
which ATAK keeps on the marker and other TAK software ignores; a human-readable copy goes in `<remarks>`.
"""
