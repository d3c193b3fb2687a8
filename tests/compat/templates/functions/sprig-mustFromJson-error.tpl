{{ sprig_mustFromJson "{" }}
