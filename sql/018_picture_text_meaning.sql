-- Text read in pictures joins the search by meaning (`text_units`, source 'picture_text'),
-- which `text_embeddings` builds. Files it ran for before `image_text` existed or ran are
-- made pending for it again; the next ingest embeds only their new units.
DELETE FROM file_asset_results r
 WHERE r.asset = 'text_embeddings'
   AND EXISTS (SELECT 1 FROM picture_texts p WHERE p.key = r.key);
