"""Where movies come from: the live TMDB API client, CSV export import and a loopback emulator."""
