{{ sprig_now | sprig_mustDateModify "1d" }}
