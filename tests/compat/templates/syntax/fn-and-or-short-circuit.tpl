{{ and 0 (index .x 1) }}|{{ or 1 (index .x 1) }}
