{{ sprig_urlJoin (sprig_dict "host" 1) }}
