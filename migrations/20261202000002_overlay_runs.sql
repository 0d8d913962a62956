-- An overlay (a caller's own images put into the cluster it leased) is a run of its own, beside
-- the build that made the cluster. Build timings, phase statistics and the failure streak that
-- degrades a profile count build runs only: a caller's broken image says nothing of the profile.
ALTER TABLE pipeline_runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'build';

CREATE TRIGGER pipeline_runs_kind_insert BEFORE INSERT ON pipeline_runs
WHEN NEW.kind NOT IN ('build', 'overlay')
BEGIN SELECT RAISE(ABORT, 'invalid run kind'); END;
