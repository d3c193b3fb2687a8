{{ "1.5e3" | parseFloat }} {{ "" | parseFloat }} {{ "-0.25" | parseFloat }} {{ "3" | parseFloat }}
