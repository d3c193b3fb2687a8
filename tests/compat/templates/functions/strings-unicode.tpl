{{ "ÀÉÎ Straße" | toLower }}|{{ "àéî straße" | toUpper }}|{{ "\u00a0 x \u3000" | trimSpace }}|{{ "a\r\nb" | indent 2 }}|{{ "éa" | split "" }}|{{ "ß" | sprig_upper }}
