"""The routers: one module per part of the site (auth, pages, station, api, exports, admin)."""
