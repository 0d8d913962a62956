-- What each cluster was built from (image names and IDs): clusters of older images are stale.
ALTER TABLE clusters ADD COLUMN images TEXT;
