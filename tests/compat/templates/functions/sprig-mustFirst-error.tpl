{{ sprig_mustFirst 1 }}
