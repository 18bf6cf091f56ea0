// Prints the node id of the active KRaft controller (the metadata quorum's leader).
// kafka-python has no DescribeQuorum; DescribeCluster's controller id is a random broker under KRaft.
// Run as a single-file source program: java -cp '<kafka lib>/*' ActiveController.java <bootstrap>
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;

public class ActiveController {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("request.timeout.ms", "15000");
        props.put("default.api.timeout.ms", "30000");
        try (Admin admin = Admin.create(props)) {
            System.out.println(admin.describeMetadataQuorum().quorumInfo().get().leaderId());
        }
    }
}
