"""`telemetryd top`: the live full-screen view and its pure layout."""
