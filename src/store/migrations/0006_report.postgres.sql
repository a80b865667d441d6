-- navbat schema 6: the monthly report's reads of the timeline (D20, issue 15). The report
-- reads two rare kinds of event by time: a tenant's surge switches and the holds of calls.
-- Partial indexes hold only those rows, so the hot write path of every other event pays
-- nothing for them (the predicate is checked, no entry is made). Version 5 is another
-- issue's; the two are independent and apply in either order.
CREATE INDEX call_events_surge ON call_events (at_ms) WHERE kind = 'surge_changed';
CREATE INDEX call_events_hold ON call_events (at_ms) WHERE kind = 'call_hold';
