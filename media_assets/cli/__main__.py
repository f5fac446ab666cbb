"""`python -m media_assets.cli`: the same as the `media-assets` console script."""

from media_assets.cli import main

main()
