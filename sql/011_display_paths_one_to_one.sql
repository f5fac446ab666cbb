-- A path's display form (media_paths.path, media_files.primary_path) is now one to one with
-- its bytes: a name that is UTF-8 without a backslash is shown as it is; any other has each
-- backslash doubled and each byte that is not UTF-8 as \xNN (lib/files/store.display_path).
-- Before, a name with the byte 0xFF and one with the four characters `\xff` shared a form,
-- so one of them was never catalogued. Existing rows are brought to the new form here.

-- The new form of an old one, read beside the exact bytes: in an old form a backslash was
-- either the name's own (the byte is 0x5C: doubled now) or the start of a \xNN escape.
CREATE FUNCTION pg_temp.display_011(old text, raw bytea) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    result text := '';
    i integer := 1;  -- character position in old
    j integer := 0;  -- byte offset in raw
    c text;
BEGIN
    WHILE i <= length(old) LOOP
        c := substr(old, i, 1);
        IF c = '\' AND get_byte(raw, j) = 92 THEN
            result := result || '\\';
            i := i + 1;
            j := j + 1;
        ELSIF c = '\' THEN
            result := result || substr(old, i, 4);
            i := i + 4;
            j := j + 1;
        ELSE
            result := result || c;
            i := i + 1;
            j := j + octet_length(convert_to(c, 'UTF8'));
        END IF;
    END LOOP;
    RETURN result;
END $$;

CREATE TEMP TABLE display_011 ON COMMIT DROP AS
SELECT path AS old,
       CASE WHEN path_bytes IS NULL THEN replace(path, '\', '\\')
            ELSE pg_temp.display_011(path, path_bytes) END AS new,
       coalesce(path_bytes, convert_to(path, 'UTF8')) AS raw
FROM media_paths
WHERE strpos(path, '\') > 0;

-- Two steps, so no row takes a form another row still holds (paths are the primary key):
-- first out of the way (a display form always starts with "/"), then to the new form.
UPDATE media_paths p SET path = ' display_011 ' || p.path
FROM display_011 d WHERE p.path = d.old;
UPDATE media_paths p SET path = d.new, path_bytes = d.raw
FROM display_011 d WHERE p.path = ' display_011 ' || d.old;
UPDATE media_files f SET primary_path = d.new
FROM display_011 d WHERE f.primary_path = d.old;

DROP FUNCTION pg_temp.display_011(text, bytea);
