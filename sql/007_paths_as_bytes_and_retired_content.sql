-- File names are bytes. A name that is not valid UTF-8 keeps its exact bytes here, so it
-- is opened again by them; `path` holds its display form (those bytes as \xNN escapes).
ALTER TABLE media_paths ADD COLUMN path_bytes bytea;

-- The rejects table a load made, so it can be dropped with its data.
ALTER TABLE json_tables ADD COLUMN rejects_table text;

-- Content that no path holds any more (a file changed in place) is deleted with all its
-- rows; its JSON tables go with it, so the new content's table keeps the plain name.
CREATE FUNCTION drop_json_data_of_content() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT table_name, rejects_table FROM json_tables WHERE key = OLD.key LOOP
        EXECUTE format('DROP TABLE IF EXISTS json_data.%I', t.table_name);
        EXECUTE format('DROP TABLE IF EXISTS json_data.%I',
                       coalesce(t.rejects_table, left(t.table_name, 52) || '__rejects'));
    END LOOP;
    RETURN OLD;
END $$;
CREATE TRIGGER media_files_drop_json_data BEFORE DELETE ON media_files
    FOR EACH ROW EXECUTE FUNCTION drop_json_data_of_content();
