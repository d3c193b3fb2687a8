{{ (secret "secret/golden").Data.data.name }}
