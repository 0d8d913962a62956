-- The values each state column may hold, enforced here. They correct the lists in the comments
-- of 20261125000001_init.sql, which cannot be edited: sqlx refuses a database whose applied
-- migration changed. The Rust enums (ClusterState, EndReason, RunOutcome) store these names.
--   clusters.state        building | ready | leased | recycling | failed | deleted | gone
--   leases.end_reason     released | expired | gone (NULL while live)
--   pipeline_runs.outcome running | succeeded | failed | cancelled
--   run_steps.outcome     running | succeeded | failed | cancelled

CREATE TRIGGER clusters_state_insert BEFORE INSERT ON clusters
WHEN NEW.state NOT IN ('building', 'ready', 'leased', 'recycling', 'failed', 'deleted', 'gone')
BEGIN SELECT RAISE(ABORT, 'invalid cluster state'); END;

CREATE TRIGGER clusters_state_update BEFORE UPDATE OF state ON clusters
WHEN NEW.state NOT IN ('building', 'ready', 'leased', 'recycling', 'failed', 'deleted', 'gone')
BEGIN SELECT RAISE(ABORT, 'invalid cluster state'); END;

CREATE TRIGGER leases_end_reason_update BEFORE UPDATE OF end_reason ON leases
WHEN NEW.end_reason IS NOT NULL AND NEW.end_reason NOT IN ('released', 'expired', 'gone')
BEGIN SELECT RAISE(ABORT, 'invalid lease end reason'); END;

CREATE TRIGGER pipeline_runs_outcome_insert BEFORE INSERT ON pipeline_runs
WHEN NEW.outcome NOT IN ('running', 'succeeded', 'failed', 'cancelled')
BEGIN SELECT RAISE(ABORT, 'invalid run outcome'); END;

CREATE TRIGGER pipeline_runs_outcome_update BEFORE UPDATE OF outcome ON pipeline_runs
WHEN NEW.outcome NOT IN ('running', 'succeeded', 'failed', 'cancelled')
BEGIN SELECT RAISE(ABORT, 'invalid run outcome'); END;

CREATE TRIGGER run_steps_outcome_insert BEFORE INSERT ON run_steps
WHEN NEW.outcome NOT IN ('running', 'succeeded', 'failed', 'cancelled')
BEGIN SELECT RAISE(ABORT, 'invalid step outcome'); END;

CREATE TRIGGER run_steps_outcome_update BEFORE UPDATE OF outcome ON run_steps
WHEN NEW.outcome NOT IN ('running', 'succeeded', 'failed', 'cancelled')
BEGIN SELECT RAISE(ABORT, 'invalid step outcome'); END;
