-- Run once by the postgres image's entrypoint, as the superuser, on an empty data folder
-- (mounted into /docker-entrypoint-initdb.d; `psql -v ON_ERROR_STOP=1`, so any error stops
-- the init). Makes the application role, its two databases, and the extensions the
-- catalogue's migrations expect: they run as `media`, which may not create `vector`.
\getenv media_password MEDIA_ASSETS_DB_PASSWORD
\if :{?media_password}
\else
  -- An error, not a warning: ON_ERROR_STOP fails the init, and the container with it.
  DO $$ BEGIN RAISE EXCEPTION 'MEDIA_ASSETS_DB_PASSWORD is not set in the postgres container'; END $$;
\endif

CREATE ROLE media LOGIN PASSWORD :'media_password';
-- Owners, so `media` creates tables in their `public` schema (PostgreSQL 15+ no longer lets
-- every role create there).
CREATE DATABASE media_assets OWNER media;
CREATE DATABASE dagster OWNER media;

\connect media_assets
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
