{{ sprig_toDate "2006-01-02T15:04:05Z07:00" "2021-06-01T10:00:00Z" }}
{{ sprig_toDate "2006-01-02T15:04:05Z07:00" "2021-06-01T10:00:00+02:00" | sprig_unixEpoch }}
{{ sprig_toDate "2006-01-02 15:04:05.000" "2021-06-01 10:00:00.123" }}
{{ sprig_toDate "2006-01-02 15:04:05" "2021-06-01 10:00:00.5" }}
{{ sprig_toDate "Jan 2 2006 3:04PM" "feb 29 2024 12:30AM" }}
{{ sprig_toDate "Monday, 02-Jan-06 15:04:05 MST" "Tuesday, 01-Jun-21 10:00:00 UTC" }}
{{ sprig_toDate "02/01/2006" "31/12/1999" }}
{{ sprig_toDate "2006-01-02" "2023-02-29" }}
{{ sprig_toDate "2006-1-2 _2" "2006-3-4  5" }}
{{ sprig_toDate "15:04" "23:59" }}
{{ sprig_toDate "2006-01-02 -0700" "2020-01-01 -0130" | sprig_unixEpoch }}
{{ sprig_toDate "060102" "991231" }}
{{ sprig_toDate "2006-01-02" "2021-06-01 extra" }}
{{ sprig_toDate "2006-01-02" "21-06-01" }}
